import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { watchFiles } from "../../startup/watch-files.js";

/** Resolves once `check` holds; a missed change fails by the test's timeout, never by a fixed sleep. */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("watchFiles: a change to a source reloads the configuration", () => {
  it("a write to a watched file calls onChange", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-watch-"));
    const file = join(dir, "config.yaml");
    writeFileSync(file, "a: 1\n");
    let changes = 0;
    const stop = watchFiles([file], () => void (changes += 1), 10);
    try {
      writeFileSync(file, "a: 2\n");
      await until(() => changes > 0);
      expect(changes).toBeGreaterThan(0);
    } finally {
      stop();
    }
  });

  it("Kubernetes' swap of the ..data symlink (a ConfigMap or Secret update) calls onChange", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-watch-k8s-"));
    for (const version of ["v1", "v2"]) {
      mkdirSync(join(dir, version));
      writeFileSync(join(dir, version, "secret"), version);
    }
    symlinkSync("v1", join(dir, "..data"));
    symlinkSync(join("..data", "secret"), join(dir, "secret"));
    let changes = 0;
    const stop = watchFiles([join(dir, "secret")], () => void (changes += 1), 10);
    try {
      // As the kubelet does it: a new link beside the old one, renamed over it.
      symlinkSync("v2", join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
      await until(() => changes > 0);
      expect(changes).toBeGreaterThan(0);
    } finally {
      stop();
    }
  });

  it("a directory that cannot be watched is passed over (SIGHUP still reloads)", () => {
    const stop = watchFiles([join(tmpdir(), "gatehouse-no-such-dir", "config.yaml")], () => {});
    expect(stop).toBeTypeOf("function");
    stop();
  });
});
