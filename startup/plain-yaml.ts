import { isScalar, Schema, type ScalarTag } from "yaml";

/**
 * A fast reader for the YAML that configuration files are made of (issue 11:
 * 1,000 tenants with 10 clients each, 2.6 MiB, must load in under a second;
 * the `yaml` package's parseDocument takes about 1.5 s for it, and most of
 * the rest of the time goes to collecting its garbage). It reads block
 * mappings and sequences (compact `- key: value` entries and sequences at
 * their key's indentation included), plain, single- and double-quoted
 * scalars on one line, flow collections on one line (`{ env: NAME }`,
 * `[read, write]`) and comments, and resolves plain scalars with the `yaml`
 * package's own YAML 1.2 core schema tags, as parseDocument does.
 *
 * Anything else (anchors and aliases, tags, block scalars `|` `>`, scalars
 * or flow collections over several lines, several documents, directives,
 * tabs, CR, control characters, duplicate keys, keys that are not simple
 * names, and every malformed line) it declines, returning undefined: the
 * caller then asks `yaml`, which reads everything and reports each error at
 * its line and column. So it never decides that a file is wrong, and what it
 * returns is what `parseDocument(text).toJS()` returns (tested by
 * test/unit/plain-yaml.test.ts against `yaml` on generated files).
 */
export function parsePlainYaml(text: string): { value: unknown } | undefined {
  if (DECLINED_CHARACTERS.test(text)) return undefined;
  const lines = splitLines(text);
  if (lines === undefined || lines.texts.length === 0) return undefined;
  try {
    return { value: new BlockReader(lines.indents, lines.texts).document() };
  } catch (error) {
    if (error === DECLINE) return undefined;
    throw error;
  }
}

/** Tabs (YAML forbids them in indentation; rare elsewhere), CR, a BOM, control characters and the other line breaks. */
// eslint-disable-next-line no-control-regex
const DECLINED_CHARACTERS = /[\t\r\x00-\x08\x0B\x0C\x0E-\x1F\x7F\x85\u2028\u2029\uFEFF]/;

/** What is thrown, and caught in parsePlainYaml, when the text leaves the subset read here. */
const DECLINE = Symbol("decline");
function decline(): never {
  throw DECLINE;
}

/** The core schema's tags that plain scalars resolve by (null, bool, int, float), in the order parseDocument tries them. */
const CORE_TAGS = new Schema({ schema: "core" }).tags.filter(
  (tag): tag is ScalarTag & { test: RegExp } => tag.default === true && !tag.collection && (tag as ScalarTag).test !== undefined,
);
const RESOLVE_OPTIONS = { intAsBigInt: false } as const;

/** A key as configurations write them: a name (camelCase, kebab-case, dotted), never null, a bool or a number in the core schema. */
const SIMPLE_KEY = /^[A-Za-z_$][\w$.-]*$/;
const NON_STRING_KEY = /^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/;

const SPACE = 32;
const HASH = 35; // #
const COLON = 58; // :
const DASH = 45; // -

/**
 * The lines that hold content, as indentation and the text after it; blank
 * and comment-only lines are left out. A document start (`---`) is allowed
 * as the first line only; any other document marker is declined.
 */
function splitLines(text: string): { indents: number[]; texts: string[] } | undefined {
  const indents: number[] = [];
  const texts: string[] = [];
  let start = 0;
  let first = true;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    let indent = start;
    while (indent < end && text.charCodeAt(indent) === SPACE) indent++;
    if (indent < end && text.charCodeAt(indent) !== HASH) {
      let last = end;
      while (text.charCodeAt(last - 1) === SPACE) last--;
      const line = text.slice(indent, last);
      if (indent === start && (line.startsWith("---") || line.startsWith("..."))) {
        if (!(first && line === "---")) return undefined;
      } else {
        indents.push(indent - start);
        texts.push(line);
      }
      first = false;
    }
    start = end + 1;
  }
  return { indents, texts };
}

/** True for a block sequence entry: `-` alone or followed by a space. */
function isSequenceEntry(text: string): boolean {
  return text.charCodeAt(0) === DASH && (text.length === 1 || text.charCodeAt(1) === SPACE);
}

/**
 * Reads block collections line by line. A compact entry (`- key: value`,
 * `- - item`) is read by rewriting its line as the nested collection's first
 * line, at the column where that collection starts.
 */
class BlockReader {
  private line = 0;

  constructor(
    private readonly indents: number[],
    private readonly texts: string[],
  ) {}

  document(): unknown {
    const value = this.block(this.indents[0]!);
    if (this.line < this.texts.length) decline();
    return value;
  }

  private block(indent: number): unknown {
    return isSequenceEntry(this.texts[this.line]!) ? this.sequence(indent) : this.mapping(indent);
  }

  /** The value of a key or `-` with nothing after it: a more indented block, a sequence at the key's own indentation, or null. */
  private nested(indent: number, sequenceAtIndent: boolean): unknown {
    if (this.line < this.texts.length) {
      const next = this.indents[this.line]!;
      if (next > indent) return this.block(next);
      if (sequenceAtIndent && next === indent && isSequenceEntry(this.texts[this.line]!)) return this.sequence(indent);
    }
    return null;
  }

  private sequence(indent: number): unknown[] {
    const items: unknown[] = [];
    while (this.line < this.texts.length) {
      const at = this.indents[this.line]!;
      if (at < indent) break;
      if (at > indent) decline();
      const text = this.texts[this.line]!;
      if (!isSequenceEntry(text)) break;
      let k = 1;
      while (text.charCodeAt(k) === SPACE) k++;
      if (k >= text.length || text.charCodeAt(k) === HASH) {
        this.line++;
        items.push(this.nested(indent, false));
        continue;
      }
      const rest = text.slice(k);
      if (isSequenceEntry(rest) || isMappingEntry(rest)) {
        this.indents[this.line] = indent + k;
        this.texts[this.line] = rest;
        items.push(this.block(indent + k));
      } else {
        this.line++;
        items.push(blockValue(rest));
      }
    }
    return items;
  }

  private mapping(indent: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    while (this.line < this.texts.length) {
      const at = this.indents[this.line]!;
      if (at < indent) break;
      if (at > indent) decline();
      const text = this.texts[this.line]!;
      const { key, after } = mappingKey(text) ?? decline();
      // uniqueKeys: parseDocument reports a repeated key; leave that to it.
      if (Object.prototype.hasOwnProperty.call(map, key)) decline();
      this.line++;
      let k = after;
      while (text.charCodeAt(k) === SPACE) k++;
      map[key] = k >= text.length || text.charCodeAt(k) === HASH ? this.nested(indent, true) : blockValue(text.slice(k));
    }
    return map;
  }
}

/**
 * The key of a block mapping line and the index after its `:` (which a space
 * or the line's end follows); undefined when the line is no such entry.
 */
function mappingKey(text: string): { key: string; after: number } | undefined {
  const first = text.charCodeAt(0);
  if (first === 34 /* " */ || first === 39 /* ' */) {
    const quoted = first === 34 ? doubleQuoted(text, 0) : singleQuoted(text, 0);
    let k = quoted.end;
    while (text.charCodeAt(k) === SPACE) k++;
    if (text.charCodeAt(k) !== COLON || (k + 1 < text.length && text.charCodeAt(k + 1) !== SPACE)) return undefined;
    if (quoted.value === "__proto__" || quoted.value.length > 1_000) decline();
    return { key: quoted.value, after: k + 1 };
  }
  const colon = text.indexOf(":");
  if (colon <= 0 || (colon + 1 < text.length && text.charCodeAt(colon + 1) !== SPACE)) return undefined;
  const key = text.slice(0, colon);
  if (!SIMPLE_KEY.test(key) || NON_STRING_KEY.test(key) || key === "__proto__" || key.length > 1_000) decline();
  return { key, after: colon + 1 };
}

/**
 * Whether the text after `- ` starts a compact mapping (`- key: value`): a
 * quoted scalar followed by `:`, or a plain scalar holding `: ` (or ending in
 * `:`) before any comment. A key the reader cannot take is declined there.
 */
function isMappingEntry(text: string): boolean {
  const first = text.charCodeAt(0);
  if (first === 34 || first === 39) {
    const quoted = first === 34 ? doubleQuoted(text, 0) : singleQuoted(text, 0);
    let k = quoted.end;
    while (text.charCodeAt(k) === SPACE) k++;
    return text.charCodeAt(k) === COLON;
  }
  if (first === 91 /* [ */ || first === 123 /* { */) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === COLON && (i + 1 === text.length || text.charCodeAt(i + 1) === SPACE)) return true;
    if (c === HASH && i > 0 && text.charCodeAt(i - 1) === SPACE) return false;
  }
  return false;
}

/** A value that starts on its key's (or `- `'s) line and ends there: a scalar or a flow collection, then at most a comment. */
function blockValue(text: string): unknown {
  const first = text.charCodeAt(0);
  let value: unknown;
  let end: number;
  if (first === 34 || first === 39) {
    const quoted = first === 34 ? doubleQuoted(text, 0) : singleQuoted(text, 0);
    value = quoted.value;
    end = quoted.end;
  } else if (first === 91 || first === 123) {
    const flow = new FlowReader(text);
    value = flow.node(0);
    end = flow.end;
  } else {
    return plainBlockScalar(text);
  }
  // After a quoted scalar or a flow collection: nothing, or a comment after a space.
  if (end < text.length) {
    let k = end;
    while (text.charCodeAt(k) === SPACE) k++;
    if (k === end || text.charCodeAt(k) !== HASH) decline();
  }
  return value;
}

/** Characters that cannot start a plain scalar here: anchors, aliases, tags, block scalars, directives, reserved, flow ends. */
const NOT_PLAIN_START = new Set("&*!|>%@`]},#".split("").map((c) => c.charCodeAt(0)));

function plainBlockScalar(text: string): unknown {
  const first = text.charCodeAt(0);
  if (NOT_PLAIN_START.has(first)) decline();
  // "- ", "? " and ": " are indicators, not the start of a scalar.
  if ((first === DASH || first === 63 /* ? */ || first === COLON) && (text.length === 1 || text.charCodeAt(1) === SPACE)) decline();
  let end = text.length;
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A mapping inside a value (`a: b: c`) is an error: parseDocument says so.
    if (c === COLON && (i + 1 === text.length || text.charCodeAt(i + 1) === SPACE)) decline();
    if (c === HASH && text.charCodeAt(i - 1) === SPACE) {
      end = i - 1;
      while (text.charCodeAt(end - 1) === SPACE) end--;
      break;
    }
  }
  return resolvePlain(end === text.length ? text : text.slice(0, end));
}

/**
 * A plain scalar's value in the YAML 1.2 core schema, by the `yaml` package's
 * own tags (null, true/false, integers, floats); anything else is a string.
 * Those tags match only text starting with `~`, a digit, a sign, `.`, or the
 * first letter of null/true/false, so other text is a string at once.
 */
function resolvePlain(text: string): unknown {
  const first = text.charCodeAt(0);
  const letter = (first >= 65 && first <= 90) || (first >= 97 && first <= 122);
  if (letter && !"nNtTfF".includes(text[0]!)) return text;
  for (const tag of CORE_TAGS) {
    if (!tag.test.test(text)) continue;
    let failed = false;
    const resolved = tag.resolve(
      text,
      () => {
        failed = true;
      },
      RESOLVE_OPTIONS,
    );
    if (failed) decline();
    return isScalar(resolved) ? resolved.value : resolved;
  }
  return text;
}

/** Escapes of double-quoted scalars (YAML 1.2 §5.7), as the `yaml` package reads them; \x, \u and \U are read apart. */
const ESCAPES: Readonly<Record<string, string>> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  e: "\x1b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  N: "\u0085",
  _: "\u00a0",
  L: "\u2028",
  P: "\u2029",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
};
const HEX = /^[0-9a-fA-F]+$/;

/** A double-quoted scalar starting at `start`, closed on the same line; the index after its closing quote. */
function doubleQuoted(text: string, start: number): { value: string; end: number } {
  const close = text.indexOf('"', start + 1);
  const backslash = text.indexOf("\\", start + 1);
  if (close !== -1 && (backslash === -1 || backslash > close)) return { value: text.slice(start + 1, close), end: close + 1 };
  let value = "";
  let i = start + 1;
  for (;;) {
    if (i >= text.length) decline(); // continued on the next line
    const c = text[i]!;
    if (c === '"') return { value, end: i + 1 };
    if (c !== "\\") {
      value += c;
      i++;
      continue;
    }
    const escape = text[i + 1];
    if (escape === undefined) decline(); // a line continuation
    const simple = ESCAPES[escape];
    if (simple !== undefined) {
      value += simple;
      i += 2;
      continue;
    }
    const length = escape === "x" ? 2 : escape === "u" ? 4 : escape === "U" ? 8 : decline();
    const hex = text.slice(i + 2, i + 2 + length);
    if (hex.length !== length || !HEX.test(hex)) decline();
    const code = parseInt(hex, 16);
    if (code > 0x10ffff) decline();
    value += String.fromCodePoint(code);
    i += 2 + length;
  }
}

/** A single-quoted scalar starting at `start`, closed on the same line (`''` is a quote); the index after its closing quote. */
function singleQuoted(text: string, start: number): { value: string; end: number } {
  let value = "";
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf("'", from);
    if (quote === -1) decline(); // continued on the next line
    value += text.slice(from, quote);
    if (text.charCodeAt(quote + 1) !== 39) return { value, end: quote + 1 };
    value += "'";
    from = quote + 2;
  }
}

const FLOW_INDICATORS = new Set("[]{},".split("").map((c) => c.charCodeAt(0)));

/** Flow collections closed on the line they open, without implicit keys, empty entries or a trailing comma. */
class FlowReader {
  end = 0;

  constructor(private readonly text: string) {}

  node(start: number): unknown {
    const c = this.text.charCodeAt(start);
    if (c === 91) return this.sequence(start);
    if (c === 123) return this.mapping(start);
    if (c === 34 || c === 39) {
      const quoted = c === 34 ? doubleQuoted(this.text, start) : singleQuoted(this.text, start);
      this.end = quoted.end;
      return quoted.value;
    }
    return this.plain(start);
  }

  private skipSpaces(i: number): number {
    while (this.text.charCodeAt(i) === SPACE) i++;
    return i;
  }

  private sequence(start: number): unknown[] {
    const items: unknown[] = [];
    let i = this.skipSpaces(start + 1);
    if (this.text.charCodeAt(i) === 93 /* ] */) {
      this.end = i + 1;
      return items;
    }
    for (;;) {
      items.push(this.node(i));
      i = this.skipSpaces(this.end);
      const c = this.text.charCodeAt(i);
      if (c === 93) {
        this.end = i + 1;
        return items;
      }
      // Anything but a comma here (`[a: b]`, a comment, the line's end) is left to parseDocument.
      if (c !== 44 /* , */) decline();
      i = this.skipSpaces(i + 1);
      const next = this.text.charCodeAt(i);
      if (next === 93 || next === 44) decline();
    }
  }

  private mapping(start: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    let i = this.skipSpaces(start + 1);
    if (this.text.charCodeAt(i) === 125 /* } */) {
      this.end = i + 1;
      return map;
    }
    for (;;) {
      const key = this.key(i);
      if (Object.prototype.hasOwnProperty.call(map, key)) decline();
      // `key:` then a space and a value; `{ a }`, `{ a: }` and `{ a:b }` are left to parseDocument.
      if (this.text.charCodeAt(this.end) !== COLON || this.text.charCodeAt(this.end + 1) !== SPACE) decline();
      i = this.skipSpaces(this.end + 2);
      const value = this.text.charCodeAt(i);
      if (value === 44 || value === 125 || Number.isNaN(value)) decline();
      map[key] = this.node(i);
      i = this.skipSpaces(this.end);
      const c = this.text.charCodeAt(i);
      if (c === 125) {
        this.end = i + 1;
        return map;
      }
      if (c !== 44) decline();
      i = this.skipSpaces(i + 1);
      const next = this.text.charCodeAt(i);
      if (next === 125 || next === 44) decline();
    }
  }

  /** A flow mapping key: quoted (then spaces) or a simple name; `end` is left at the `:` that must follow. */
  private key(start: number): string {
    const c = this.text.charCodeAt(start);
    let key: string;
    if (c === 34 || c === 39) {
      const quoted = c === 34 ? doubleQuoted(this.text, start) : singleQuoted(this.text, start);
      key = quoted.value;
      this.end = this.skipSpaces(quoted.end);
      if (key === "__proto__" || key.length > 1_000) decline();
      return key;
    }
    let i = start;
    while (i < this.text.length && this.text.charCodeAt(i) !== COLON && !FLOW_INDICATORS.has(this.text.charCodeAt(i))) i++;
    key = this.text.slice(start, i);
    if (!SIMPLE_KEY.test(key) || NON_STRING_KEY.test(key) || key === "__proto__" || key.length > 1_000) decline();
    this.end = i;
    return key;
  }

  /** A plain scalar in a flow collection: it ends at a flow indicator; a `:` that could make it a key, or a comment, is declined. */
  private plain(start: number): unknown {
    const first = this.text.charCodeAt(start);
    if (Number.isNaN(first) || NOT_PLAIN_START.has(first) || FLOW_INDICATORS.has(first)) decline();
    if ((first === DASH || first === 63 || first === COLON) && (start + 1 === this.text.length || this.text.charCodeAt(start + 1) === SPACE || FLOW_INDICATORS.has(this.text.charCodeAt(start + 1)))) {
      decline();
    }
    let i = start;
    for (; i < this.text.length; i++) {
      const c = this.text.charCodeAt(i);
      if (FLOW_INDICATORS.has(c)) break;
      if (c === COLON) {
        const next = this.text.charCodeAt(i + 1);
        if (i + 1 === this.text.length || next === SPACE || FLOW_INDICATORS.has(next)) decline();
      }
      if (c === HASH && this.text.charCodeAt(i - 1) === SPACE) decline();
    }
    this.end = i;
    let last = i;
    while (this.text.charCodeAt(last - 1) === SPACE) last--;
    return resolvePlain(this.text.slice(start, last));
  }
}
