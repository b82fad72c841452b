import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { secretReference } from "../../startup/secret-reference.js";
import { createSecretResolver } from "../../startup/secret-resolver.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-secrets-"));
const secretFile = join(dir, "client-secret");
writeFileSync(secretFile, "  from-a-file\n");

describe("secretReference: where a secret comes from", () => {
  it.each<[string, unknown]>([
    ["an environment variable", { env: "CLIENT_SECRET" }],
    ["a file", { file: "/run/secrets/client" }],
  ])("%s is a reference", (_name, value) => {
    expect(secretReference.safeParse(value).success).toBe(true);
  });

  it.each<[string, unknown]>([
    ["the secret itself in the YAML", "hunter2"],
    ["both at once", { env: "A", file: "/b" }],
    ["an empty name", { env: "" }],
    ["an unknown key beside env", { env: "A", value: "x" }],
    ["neither", {}],
  ])("%s is refused", (_name, value) => {
    expect(secretReference.safeParse(value).success).toBe(false);
  });
});

describe("createSecretResolver", () => {
  it("reads an env reference from the environment it is given, not process.env", () => {
    process.env.GATEHOUSE_TEST_ONLY_IN_PROCESS = "leaked";
    try {
      const problems: string[] = [];
      const secrets = createSecretResolver({ GIVEN: "given-value" }, problems);
      expect(secrets.resolve({ env: "GIVEN" }, "a.b")).toBe("given-value");
      expect(secrets.resolve({ env: "GATEHOUSE_TEST_ONLY_IN_PROCESS" }, "a.c")).toBeUndefined();
      expect(problems).toEqual(["a.c: environment variable GATEHOUSE_TEST_ONLY_IN_PROCESS is not set"]);
    } finally {
      delete process.env.GATEHOUSE_TEST_ONLY_IN_PROCESS;
    }
  });

  it("reads a file reference, trimmed (a mounted Secret ends in a newline), and records the file as a reload source", () => {
    const problems: string[] = [];
    const secrets = createSecretResolver({}, problems);
    expect(secrets.resolve({ file: secretFile }, "gateway.authz.clientSecret")).toBe("from-a-file");
    expect(problems).toEqual([]);
    expect(secrets.sources()).toEqual([secretFile]);
  });

  it("an empty variable is as unset: a problem at its path", () => {
    const problems: string[] = [];
    expect(createSecretResolver({ EMPTY: "" }, problems).resolve({ env: "EMPTY" }, "authz.serviceCredential")).toBeUndefined();
    expect(problems).toEqual(["authz.serviceCredential: environment variable EMPTY is not set"]);
  });

  it("an unreadable file is a problem at its path, with the reason, and still a reload source (it may appear later)", () => {
    const missing = join(dir, "not-there");
    const problems: string[] = [];
    const secrets = createSecretResolver({}, problems);
    expect(secrets.resolve({ file: missing }, "clients[2].secretHashes[0]")).toBeUndefined();
    expect(problems).toEqual([`clients[2].secretHashes[0]: cannot read ${missing} (ENOENT)`]);
    expect(secrets.sources()).toEqual([missing]);
  });

  it("every unresolvable reference is listed, each at its own path, in order (fast-check)", () => {
    const name = fc.stringMatching(/^[A-Z][A-Z0-9_]{0,10}$/);
    fc.assert(
      fc.property(fc.uniqueArray(name, { minLength: 1, maxLength: 8 }), fc.func(fc.boolean()), (names, isSet) => {
        const env = Object.fromEntries(names.filter((n) => isSet(n)).map((n) => [n, `value of ${n}`]));
        const problems: string[] = [];
        const secrets = createSecretResolver(env, problems);
        const values = names.map((n, i) => secrets.resolve({ env: n }, `secrets[${i}]`));
        expect(values).toEqual(names.map((n) => env[n]));
        expect(problems).toEqual(names.flatMap((n, i) => (n in env ? [] : [`secrets[${i}]: environment variable ${n} is not set`])));
        expect(secrets.sources()).toEqual([]);
      }),
    );
  });

  it("sources() is a copy: what the caller does with it does not change the resolver's record", () => {
    const secrets = createSecretResolver({}, []);
    secrets.resolve({ file: secretFile }, "x");
    secrets.sources().push("/elsewhere");
    expect(secrets.sources()).toEqual([secretFile]);
  });
});
