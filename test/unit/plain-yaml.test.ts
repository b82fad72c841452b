import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseDocument, stringify, type ToStringOptions } from "yaml";
import { parsePlainYaml } from "../../startup/plain-yaml.js";

/** What validate-config.ts asks the `yaml` package for: the reference the fast reader must agree with. */
function reference(text: string): { errors: number; value: unknown } {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  return { errors: document.errors.length, value: document.errors.length > 0 ? undefined : document.toJS() };
}

/** The property every test below checks: the fast reader declines, or reads exactly what `yaml` reads from a text `yaml` accepts. */
function agreesWithYaml(text: string): boolean {
  const plain = parsePlainYaml(text);
  if (plain === undefined) return false;
  const expected = reference(text);
  expect(expected.errors, `yaml refuses what the fast reader read:\n${text}`).toBe(0);
  // node's deep strict equality: same prototypes, same own keys (a key named `constructor` included), same values.
  if (!isDeepStrictEqual(plain.value, expected.value)) expect(plain.value, text).toStrictEqual(expected.value);
  return true;
}

/** Keys as configurations write them, plus the ones that must be declined or quoted. */
const key = fc.oneof(
  { weight: 8, arbitrary: fc.stringMatching(/^[a-z][A-Za-z0-9]{0,8}$/) },
  fc.constantFrom("null", "true", "False", "__proto__", "a b", "a:b", "x-y", "k.v", "1", "$ref", "-a", "constructor", "toString"),
);

/** Scalars, with the characters and spellings that YAML treats specially. */
const scalar = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."ab z09-:#'\"[]{},&*!|>%@`?.~\\/ ".split("")), maxLength: 12 }),
  fc.constantFrom("", "~", "null", "Null", "NULL", "true", "TRUE", "yes", "on", "0x1F", "0o17", "1e3", "-1.5", ".inf", "-.Inf", ".nan", "+12", "007", "1_000", "2024-01-01", "10.0.0.0/8", "https://a.example/cb?x=1#f", "sha256:abc", "scrypt$1$2$3$a$b", "é ü ∑", "- a", "a: b", "a #b", "a#b"),
  fc.integer(),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
);

/** Configuration-shaped documents: a mapping at the top, lists of mappings, lists of scalars, nested sections. */
const documentValue = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, tie("list"), tie("map")),
  list: fc.array(tie("node"), { maxLength: 4 }),
  map: fc.dictionary(key, tie("node"), { maxKeys: 5 }),
})).map;

/** The ways yaml.stringify writes a document: block and flow, indentation, sequences under keys, quoting, folding. */
const writeOptions: fc.Arbitrary<ToStringOptions> = fc.record({
  indent: fc.constantFrom(2, 3, 4),
  indentSeq: fc.boolean(),
  collectionStyle: fc.constantFrom("any", "block", "flow"),
  defaultStringType: fc.constantFrom("PLAIN", "QUOTE_DOUBLE", "QUOTE_SINGLE"),
  defaultKeyType: fc.constantFrom(null, "PLAIN", "QUOTE_DOUBLE"),
  flowCollectionPadding: fc.boolean(),
  lineWidth: fc.constantFrom(0, 20, 80),
  doubleQuotedAsJSON: fc.boolean(),
}) as fc.Arbitrary<ToStringOptions>;

type Edit =
  | { kind: "insert"; at: number; text: string }
  | { kind: "delete"; at: number; length: number }
  | { kind: "repeat line"; at: number }
  | { kind: "indent line"; at: number; by: number };

/** A few edits YAML is sensitive to: a character inserted, a span deleted, a line repeated or indented. */
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom(..." -:#'\"[]{},&*!|>?@`\\\n\t\r".split(""), "  ", ": ", "- ", " #", "\n  ", "\n- ", "---\n", "%") }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant("repeat line" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("indent line" as const), at: fc.nat(), by: fc.integer({ min: 1, max: 3 }) }),
);

function applyEdit(text: string, change: Edit): string {
  const at = text.length === 0 ? 0 : change.at % text.length;
  if (change.kind === "insert") return text.slice(0, at) + change.text + text.slice(at);
  if (change.kind === "delete") return text.slice(0, at) + text.slice(at + change.length);
  const lines = text.split("\n");
  const line = change.at % lines.length;
  if (change.kind === "repeat line") lines.splice(line, 0, lines[line]!);
  else lines[line] = " ".repeat(change.by) + lines[line]!;
  return lines.join("\n");
}

describe("parsePlainYaml: what it reads is what the yaml package reads (issue 11's fast path)", () => {
  it("generated documents, written in every style yaml.stringify has: it declines, or reads the same value (fast-check)", () => {
    fc.assert(
      fc.property(documentValue, writeOptions, (value, options) => {
        agreesWithYaml(stringify(value, options));
      }),
      { numRuns: 2_000 },
    );
  });

  it("the same documents after random edits (a quote, an indicator, a tab, an indentation): never accepts what yaml refuses, never reads it otherwise (fast-check)", () => {
    fc.assert(
      fc.property(documentValue, writeOptions, fc.array(edit, { minLength: 1, maxLength: 3 }), (value, options, edits) => {
        const text = edits.reduce(applyEdit, stringify(value, options));
        agreesWithYaml(text);
      }),
      { numRuns: 3_000 },
    );
  });

  it("configuration-shaped documents in yaml.stringify's default block style are read, not declined (fast-check)", () => {
    const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).filter((w) => !["null", "true", "false", "yes", "no"].includes(w));
    const client = fc.record({
      id: word,
      name: fc.stringMatching(/^[A-Z][a-z]{0,8}( [A-Za-z0-9]{1,6}){0,2}$/),
      type: fc.constantFrom("confidential", "public"),
      secretHashes: fc.array(fc.oneof(fc.stringMatching(/^sha256:[A-Za-z0-9_-]{43}$/), fc.record({ env: fc.stringMatching(/^[A-Z][A-Z_]{0,10}$/) })), { maxLength: 2 }),
      redirectUris: fc.array(fc.webUrl(), { maxLength: 2 }),
      scopes: fc.array(word, { maxLength: 3 }),
      pkce: fc.record({ required: fc.boolean() }),
      refreshGraceSeconds: fc.nat(300),
    });
    const file = fc.record({
      issuer: fc.webUrl(),
      authz: fc.record({ port: fc.nat(65_535), keyPrefix: fc.constantFrom("gatehouse:", "gh:prod:") }),
      tenants: fc.array(fc.record({ name: word, clients: fc.array(client, { maxLength: 3 }), users: fc.array(fc.record({ username: word, passwordHash: fc.constant("scrypt$32768$8$1$c2FsdHNhbHQ$aGFzaA") }), { maxLength: 2 }) }), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(file, fc.constantFrom(2, 4), fc.boolean(), (value, indent, indentSeq) => {
        const text = stringify(value, { indent, indentSeq, lineWidth: 0 });
        expect(agreesWithYaml(text), text).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    "0x1F", "0o17", "0o19", "1e3", "1E-3", "-1.5", "1.", ".5", "+.5e+2", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "+12", "-0", "007", "08", "1_000",
    "12345678901234567890", "~", "null", "Null", "NULL", "nULL", "true", "True", "TRUE", "tRUE", "false", "FALSE", "yes", "No", "on", "off",
    "2024-01-01", "10.0.0.0/8", "1.2.3", "::1", "a:b", "a#b", "http://x:8080/a?b#c", "-a", "?a", ":a", "x ~", "0b101", "0X1F", "Infinity", "NaN",
  ])("the plain scalar %s resolves as the core schema says (a mapping value, a list item, in a flow list)", (text) => {
    for (const document of [`key: ${text}\n`, `- ${text}\n`, `key: [${text}, x]\n`, `key: { a: ${text} }\n`]) agreesWithYaml(document);
    expect(parsePlainYaml(`key: ${text}\n`)).toBeDefined();
  });

  it.each([
    ["an anchor and an alias", "a: &x 1\nb: *x\n"],
    ["a tag", "a: !!str 1\n"],
    ["a literal block scalar", "a: |\n  text\n"],
    ["a folded block scalar", "a: >\n  text\n"],
    ["a plain scalar over two lines", "a: one\n  two\n"],
    ["a double-quoted scalar over two lines", 'a: "one\n  two"\n'],
    ["a flow collection over two lines", "a: [1,\n  2]\n"],
    ["a repeated key", "a: 1\na: 2\n"],
    ["a repeated key in a flow mapping", "a: { b: 1, b: 2 }\n"],
    ["a tab", "a:\t1\n"],
    ["CRLF line ends", "a: 1\r\nb: 2\r\n"],
    ["a byte order mark", "\uFEFFa: 1\n"],
    ["two documents", "a: 1\n---\nb: 2\n"],
    ["a directive", "%YAML 1.2\n---\na: 1\n"],
    ["a mapping in a value", "a: b: c\n"],
    ["an explicit key", "? a\n: b\n"],
    ["a key that is not a name", "a b: 1\n"],
    ["a key that resolves to null", "null: 1\n"],
    ["__proto__", "__proto__: { a: 1 }\n"],
    ["a trailing comma in a flow list", "a: [1, 2,]\n"],
    ["a single-pair mapping in a flow list", "a: [b: c]\n"],
    ["a mis-indented line", "a:\n    b: 1\n  c: 2\n"],
    ["an empty document", "# nothing\n"],
    ["a scalar document", "just text\n"],
  ])("declines %s (yaml reads it, or reports it at its line)", (_name, text) => {
    expect(parsePlainYaml(text)).toBeUndefined();
  });

  it("reads every configuration in the repository as yaml does (config/, deploy/, the examples)", () => {
    const files = execFileSync("git", ["ls-files", "config/*.yaml", "deploy/**gatehouse*.yaml", "deploy/**/notes-api-gateway.yaml"], { encoding: "utf8" }).split("\n").filter(Boolean);
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) expect(agreesWithYaml(readFileSync(file, "utf8")), file).toBe(true);
  });

  it("reads a 1,000-tenant configuration (10 clients each) as yaml does", () => {
    const text = stringify({
      issuer: "https://id.example",
      tenants: Array.from({ length: 1_000 }, (_, i) => ({
        name: `tenant-${i}`,
        scopes: [{ name: "read", description: "Read your documents" }],
        clients: Array.from({ length: 10 }, (_, j) => ({ id: `client-${j}`, name: `Client ${j}`, type: "confidential", secretHashes: [{ env: "HASH" }], redirectUris: [`https://app-${j}.tenant-${i}.example/cb`], scopes: ["read"], refreshGraceSeconds: j })),
      })),
    });
    expect(agreesWithYaml(text)).toBe(true);
  });
});
