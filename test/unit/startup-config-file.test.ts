import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { loadConfigFile } from "../../startup/config-file.js";
import { salvageList } from "../../startup/salvage-list.js";
import { validateConfig, type ConfigSpec } from "../../startup/validate-config.js";
import { configErrorOf } from "../support/config-error-of.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-config-file-"));

describe("loadConfigFile: the file GATEHOUSE_CONFIG names", () => {
  const file = join(dir, "config.yaml");
  writeFileSync(file, "issuer: https://as.example\n");

  it("hands the file's text and path to the parser, and puts the file first in sources", () => {
    const seen: string[] = [];
    const config = loadConfigFile({ GATEHOUSE_CONFIG: file }, "configuration", (text, path) => {
      seen.push(text, path);
      return { value: 1, sources: ["/run/secrets/a"] };
    });
    expect(seen).toEqual(["issuer: https://as.example\n", file]);
    expect(config).toEqual({ value: 1, sources: [file, "/run/secrets/a"] });
    expect([Object.isFrozen(config), Object.isFrozen(config.sources)]).toEqual([true, true]);
  });

  it("without GATEHOUSE_CONFIG, the checkout's config/dev.yaml", () => {
    const config = loadConfigFile({}, "configuration", (_text, path) => ({ path, sources: [] }));
    expect(config.path).toBe(resolve("config/dev.yaml"));
  });

  it("a file that cannot be read is one problem at the file's path, with the reason, in the subject's words", () => {
    const missing = join(dir, "missing.yaml");
    const error = configErrorOf(() => loadConfigFile({ GATEHOUSE_CONFIG: missing }, "gateway configuration", () => ({ sources: [] })));
    expect(error.problems).toEqual([`${missing}: cannot read the configuration file (ENOENT)`]);
    expect(error.message).toMatch(/^invalid gateway configuration:\n/);
  });

  it("a directory is not a configuration file", () => {
    expect(configErrorOf(() => loadConfigFile({ GATEHOUSE_CONFIG: dir }, "configuration", () => ({ sources: [] }))).problems).toEqual([
      `${dir}: cannot read the configuration file (EISDIR)`,
    ]);
  });
});

describe("validateConfig: every problem at once", () => {
  const entry = z.strictObject({ id: z.string().min(1), upstream: z.string().optional() });
  const schema = z.strictObject({ issuer: z.string(), entries: z.array(entry).default([]) });
  type File = z.infer<typeof schema>;
  type Salvaged = { issuer: string; entries: Array<File["entries"][number] | undefined> };
  const spec: ConfigSpec<File, Salvaged, { ids: string[] }> = {
    subject: "test configuration",
    schema,
    salvage: (raw) => {
      const record = (raw ?? {}) as Record<string, unknown>;
      return { issuer: typeof record.issuer === "string" ? record.issuer : "https://issuer.invalid", entries: salvageList(entry, record.entries) };
    },
    // A check beyond the schema: every entry needs an upstream.
    build: (file, problems) => {
      if (!file.issuer.startsWith("https:")) problems.push("issuer: must use https");
      file.entries.forEach((e, i) => {
        if (e !== undefined && e.upstream === undefined) problems.push(`entries[${i}].upstream: required`);
      });
      return { ids: file.entries.flatMap((e) => (e === undefined ? [] : [e.id])) };
    },
  };

  it("a valid file is built", () => {
    expect(validateConfig("issuer: https://a\nentries:\n  - { id: x, upstream: u }\n", "config", spec)).toEqual({ ids: ["x"] });
  });

  it("schema problems and the problems of the later checks are listed together, positions kept", () => {
    const text = "issuer: http://a\nentries:\n  - { id: x }\n  - { id: '' }\n  - { id: z }\n";
    expect(configErrorOf(() => validateConfig(text, "config", spec)).problems).toEqual([
      "entries[1].id: Too small: expected string to have >=1 characters",
      "issuer: must use https",
      "entries[0].upstream: required",
      "entries[2].upstream: required",
    ]);
  });

  it("semantic problems alone are listed too, under the subject's name", () => {
    const error = configErrorOf(() => validateConfig("issuer: http://a\n", "config", spec));
    expect(error.problems).toEqual(["issuer: must use https"]);
    expect(error.message).toBe("invalid test configuration:\n  - issuer: must use https");
  });

  it.each<[string, string, RegExp]>([
    ["a syntax error, at its line and column", "issuer: https://a\nentries: [unclosed\n", /^\/etc\/gatehouse\.yaml: Flow sequence .* at line \d+, column \d+/],
    ["a key written twice, at its line", "issuer: https://a\nissuer: https://b\n", /^\/etc\/gatehouse\.yaml: Map keys must be unique at line 2/],
  ])("a YAML error is one problem against the file: %s", (_name, text, problem) => {
    const problems = configErrorOf(() => validateConfig(text, "/etc/gatehouse.yaml", spec)).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });

  it("an empty file is an empty mapping: the schema says what is missing", () => {
    expect(configErrorOf(() => validateConfig("", "config", spec)).problems).toEqual(["issuer: Invalid input: expected string, received undefined"]);
  });
});
