import type { RouteConfig } from "../config.js";

/**
 * The first step of the guard: the request target normalised ONCE, then the
 * one rule that covers it. Everything here is pure and synchronous.
 *
 * The normal form (RFC 3986 §6.2.2) is what the route table is matched on and
 * what the upstream receives, so that every spelling of a path that the
 * gateway lets through reaches the upstream as the one spelling that was
 * checked. Spellings that servers disagree about are refused instead of
 * guessed at (see `normalizeTarget`).
 */

/** A request target in normal form: the path that is matched and forwarded, and the query string as it came. */
export interface NormalizedTarget {
  readonly ok: true;
  /** Absolute, no empty or dot segments, unreserved characters decoded, other escapes in upper case. */
  readonly path: string;
  /** Everything after the first `?`, unchanged (including the `?`), or "" when there is none. */
  readonly search: string;
}

/** Why a request target is refused (answered 400). */
export interface RefusedTarget {
  readonly ok: false;
  readonly reason: string;
}

const enum Char {
  Percent = 0x25,
  Slash = 0x2f,
  Dot = 0x2e,
  Question = 0x3f,
}

/**
 * Raw characters allowed in a path segment: RFC 3986 pchar (unreserved,
 * sub-delims, ":" and "@") without ";", which Java servlet containers and
 * others cut off as a path parameter (`/admin;x/` is `/admin/` to them).
 */
const RAW_ALLOWED = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@") RAW_ALLOWED[c.charCodeAt(0)] = 1;

/** RFC 3986 §2.3 unreserved characters: their escapes are decoded (§6.2.2.2). */
const UNRESERVED = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") UNRESERVED[c.charCodeAt(0)] = 1;

const HEX = "0123456789ABCDEF";
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Normalises a request target (the origin-form of RFC 9112 §3.2.1) once:
 *
 * - escapes of unreserved characters are decoded, other escapes keep their
 *   encoding with upper-case hex (RFC 3986 §6.2.2.1-2);
 * - dot segments are resolved (RFC 3986 §5.2.4) and empty segments (`//`)
 *   collapse;
 * - the query string is kept exactly as it came.
 *
 * Refused, because two servers may read them as two different paths:
 * an encoded `/` or `\` (`%2F`, `%5C`), an encoded dot segment (`%2e%2e`),
 * encoded control characters and NUL, `%25` followed by two hex digits
 * (double encoding), `;` raw or encoded (path parameters), a raw `\`, a
 * segment ending in `.` (Windows drops trailing dots), `..` above the root,
 * malformed escapes, escaped bytes that are not UTF-8 (overlong `%C0%AE`),
 * code points whose compatibility form (NFKC) contains `.`, `/` or `\`
 * (fullwidth `%EF%BC%8E`, one dot leader `%E2%80%A4`, division slash, ...),
 * and anything that is not an absolute path (absolute-form, `*`, fragments).
 */
export function normalizeTarget(target: string): NormalizedTarget | RefusedTarget {
  if (target.charCodeAt(0) !== Char.Slash) return refuse("the request target must be an absolute path");
  const q = target.indexOf("?");
  const path = q === -1 ? target : target.slice(0, q);
  const search = q === -1 ? "" : target.slice(q);
  if (isNormalPath(path)) return { ok: true, path, search };
  return normalizeSlowly(path, search);
}

/**
 * True when the path is already in normal form: only raw pchars, no escapes,
 * no empty segment, no dot segment and no segment ending in a dot. Most
 * requests are; they cost one pass over the string.
 */
function isNormalPath(path: string): boolean {
  let previous = Char.Slash as number;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === Char.Slash) {
      // `//`, or a segment ending in "." (which covers "/./" and "/../").
      if (previous === Char.Slash || previous === Char.Dot) return false;
    } else if (c >= 128 || RAW_ALLOWED[c] !== 1) {
      return false;
    }
    previous = c;
  }
  // A last segment ending in "." (including "." and ".."), e.g. "/a/.." or "/a.".
  return previous !== Char.Dot;
}

function normalizeSlowly(path: string, search: string): NormalizedTarget | RefusedTarget {
  const output: string[] = [];
  const rawSegments = path.split("/");
  // rawSegments[0] is the empty string before the leading "/".
  let trailingSlash = false;
  for (let s = 1; s < rawSegments.length; s++) {
    const raw = rawSegments[s]!;
    const last = s === rawSegments.length - 1;
    const decoded = decodeSegment(raw);
    if (typeof decoded !== "string") return decoded;
    if (decoded === "." || decoded === "..") {
      // RFC 3986 §2.3 says %2E is ".", but servers that decode after resolving dot segments disagree.
      if (raw !== decoded) return refuse("encoded dot segments are not accepted");
      if (decoded === "..") {
        if (output.length === 0) return refuse("the path climbs above the root");
        output.pop();
      }
      // RFC 3986 §5.2.4: "/a/b/." and "/a/b/.." end in "/".
      if (last) trailingSlash = true;
      continue;
    }
    if (decoded === "") {
      if (last) trailingSlash = true;
      continue;
    }
    if (decoded.charCodeAt(decoded.length - 1) === Char.Dot) return refuse("path segments must not end in a dot");
    output.push(decoded);
  }
  if (output.length === 0) return { ok: true, path: "/", search };
  return { ok: true, path: `/${output.join("/")}${trailingSlash ? "/" : ""}`, search };
}

/** One raw segment in normal form, or why it is refused. */
function decodeSegment(raw: string): string | RefusedTarget {
  let out = "";
  for (let i = 0; i < raw.length; ) {
    const c = raw.charCodeAt(i);
    if (c !== Char.Percent) {
      if (c === 0x5c) return refuse("backslashes are not accepted in paths");
      if (c === 0x3b) return refuse("path parameters (;) are not accepted");
      if (c >= 128 || RAW_ALLOWED[c] !== 1) return refuse("the path contains a character that must be percent-encoded");
      out += raw[i];
      i++;
      continue;
    }
    const byte = hexByte(raw, i);
    if (byte === -1) return refuse("malformed percent-encoding");
    if (byte < 0x80) {
      if (byte === Char.Slash || byte === 0x5c) return refuse("encoded slashes and backslashes are not accepted");
      if (byte < 0x20 || byte === 0x7f) return refuse("encoded control characters are not accepted");
      if (byte === 0x3b) return refuse("path parameters (;) are not accepted");
      out += UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
      i += 3;
      continue;
    }
    // A run of escaped non-ASCII bytes must be well-formed UTF-8 (no overlong "." or "/").
    const bytes: number[] = [];
    let j = i;
    for (; j < raw.length && raw.charCodeAt(j) === Char.Percent; j += 3) {
      const b = hexByte(raw, j);
      if (b === -1) return refuse("malformed percent-encoding");
      if (b < 0x80) break;
      bytes.push(b);
    }
    let text: string;
    try {
      text = utf8.decode(Uint8Array.from(bytes));
    } catch {
      return refuse("percent-encoded bytes must be UTF-8");
    }
    // Upstreams that fold Unicode (NFKC, as some IIS/.NET and Java stacks do)
    // read U+FF0E U+FF0E as "..", U+FF0F as "/" and U+FF3C as "\": the same
    // tricks as their ASCII forms, refused the same way. Only segments with
    // escaped non-ASCII bytes get here, so plain paths pay nothing for it.
    if (hasCompatibilitySeparator(text)) return refuse("compatibility forms of \".\", \"/\" and \"\\\" are not accepted in paths");
    for (const b of bytes) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
    i = j;
  }
  // An encoded "%" followed by two hex digits in the result (`%2541`, or `%25a%61` once
  // the "a" is decoded) is an escape to a server that decodes twice.
  if (out.includes("%25") && DOUBLE_ENCODED.test(out)) return refuse("double percent-encoding is not accepted");
  return out;
}

const DOUBLE_ENCODED = /%25[0-9A-Fa-f]{2}/;

/**
 * True when some code point of `text` has an NFKC form (Unicode UAX #15)
 * that contains ".", "/" or "\" (U+FF0E, U+FF0F, U+FF3C, U+2024, U+2025,
 * U+FE52, U+FE68, U+2488 "1.", U+2100 "a/c", ...), or is one of the
 * look-alikes that NFKC keeps but other folds turn into them: Windows'
 * best-fit conversion to code pages maps U+2215 DIVISION SLASH and U+2044
 * FRACTION SLASH to "/", and UTS #46 maps U+3002 and U+FF61 to ".". The fold
 * is taken of the whole run at once: no composition produces ".", "/" or
 * "\", so the run's fold contains one exactly when some code point's fold
 * does. `text` holds only decoded non-ASCII bytes, so a "." in its fold is
 * never the caller's ASCII dot.
 */
function hasCompatibilitySeparator(text: string): boolean {
  return LOOK_ALIKE.test(text) || ASCII_SEPARATOR.test(text.normalize("NFKC"));
}

const ASCII_SEPARATOR = /[./\\]/;
const LOOK_ALIKE = /[\u2044\u2215\u2216\u29f5\u29f8\u29f9\u3002\uff61]/;

/** The byte of the escape `%XX` at `i`, or -1. */
function hexByte(text: string, i: number): number {
  if (i + 2 >= text.length) return -1;
  const hi = hexValue(text.charCodeAt(i + 1));
  const lo = hexValue(text.charCodeAt(i + 2));
  return hi === -1 || lo === -1 ? -1 : (hi << 4) | lo;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function refuse(reason: string): RefusedTarget {
  return { ok: false, reason };
}

// ---------------------------------------------------------------------------
// The route table

/** A route as the matcher holds it: the config's route and its compiled pattern. */
export interface CompiledRoute {
  readonly config: RouteConfig;
  /** Upper-case methods; null: any method the configuration knows. */
  readonly methods: ReadonlySet<string> | null;
  /** Literal segments ("" included), or STAR for `*`; without a trailing `**`. */
  readonly segments: readonly string[];
  /** The same, lower-cased, to notice spellings that differ only in letter case. */
  readonly foldedSegments: readonly string[];
  /** The pattern ended in `**`: any rest, including none. */
  readonly rest: boolean;
}

/** What the route table says about a request. */
export type RouteMatch =
  | { readonly kind: "route"; readonly route: CompiledRoute }
  /** No rule covers the request. */
  | { readonly kind: "none" }
  /**
   * A rule covers the path, but not this method: denied, never handed to the
   * unmatched passthrough (a GET-only rule does not make POST public).
   */
  | { readonly kind: "other-method"; readonly route: CompiledRoute }
  /** Two or more rules cover the request: a configuration problem; the request is denied. */
  | { readonly kind: "ambiguous"; readonly routes: readonly CompiledRoute[] }
  /**
   * The path differs only in letter case from a case-sensitive rule: a
   * case-insensitive upstream would serve it as that rule's resource, so it
   * must not fall to another rule or to the passthrough.
   */
  | { readonly kind: "case-variant"; readonly route: CompiledRoute };

export interface RouteTable {
  readonly routes: readonly CompiledRoute[];
  /** Matches a method and a path in normal form (from `normalizeTarget`). */
  match(method: string, path: string): RouteMatch;
}

export class RouteTableError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid route table:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "RouteTableError";
  }
}

const STAR = "\u0000*";
/** Methods a route without `methods` opens: those the configuration knows (no TRACE, no QUERY). */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const NONE: RouteMatch = { kind: "none" };

/**
 * Compiles the route table. Patterns are `/`-separated literal segments in
 * normal form, `*` for exactly one non-empty segment, and a last `**` for any
 * rest of the path including none (`/api/**` covers `/api`, `/api/` and
 * `/api/a/b`). A route that lists GET also covers HEAD. Literals of a
 * case-insensitive route match in any letter case.
 *
 * Bad patterns throw a RouteTableError listing every problem; pairs of rules
 * that some request would match both are returned as `overlaps`, for the log:
 * such requests are denied (exactly one rule must match).
 */
export function compileRouteTable(routes: readonly RouteConfig[]): { table: RouteTable; overlaps: string[] } {
  const problems: string[] = [];
  const compiled = routes.map((route) => {
    const problem = checkPattern(route.path);
    if (problem !== undefined) problems.push(`${route.name}: path ${JSON.stringify(route.path)} ${problem}`);
    return compileRoute(route);
  });
  if (problems.length > 0) throw new RouteTableError(problems);

  // Index by first segment (folded); rules starting with `*` or `**` are candidates for every path.
  const wild: CompiledRoute[] = [];
  const byFirst = new Map<string, CompiledRoute[]>();
  for (const route of compiled) {
    const first = route.foldedSegments[0];
    if (first === undefined || first === STAR) wild.push(route);
    else byFirst.set(first, [...(byFirst.get(first) ?? []), route]);
  }
  for (const [first, list] of byFirst) byFirst.set(first, [...list, ...wild]);

  const table: RouteTable = {
    routes: compiled,
    match(method, path) {
      const segments = path.split("/");
      // segments[0] is "" (the leading slash); the first real segment picks the candidates.
      const candidates = byFirst.get((segments[1] ?? "").toLowerCase()) ?? wild;
      let found: CompiledRoute | undefined;
      let more: CompiledRoute[] | undefined;
      let caseVariant: CompiledRoute | undefined;
      let otherMethod: CompiledRoute | undefined;
      for (let i = 0; i < candidates.length; i++) {
        const route = candidates[i]!;
        const m = matchSegments(route, segments);
        if (m === Match.No) continue;
        if (!methodMatches(route, method)) {
          otherMethod ??= route;
          continue;
        }
        if (m === Match.Exact) {
          if (found === undefined) found = route;
          else (more ??= [found]).push(route);
        } else if (m === Match.CaseOnly) {
          caseVariant ??= route;
        }
      }
      if (more !== undefined) return { kind: "ambiguous", routes: more };
      if (caseVariant !== undefined) return { kind: "case-variant", route: caseVariant };
      if (found !== undefined) return { kind: "route", route: found };
      return otherMethod === undefined ? NONE : { kind: "other-method", route: otherMethod };
    },
  };

  const overlaps: string[] = [];
  for (let i = 0; i < compiled.length; i++) {
    for (let j = i + 1; j < compiled.length; j++) {
      const a = compiled[i]!;
      const b = compiled[j]!;
      if (methodsOverlap(a, b) && patternsOverlap(a, b)) {
        overlaps.push(`${a.config.name} and ${b.config.name} both cover some requests (${a.config.path}, ${b.config.path}); such requests are denied`);
      }
    }
  }
  return { table, overlaps };
}

const enum Match {
  No,
  Exact,
  /** Matches only when letter case is ignored, and the route is case-sensitive. */
  CaseOnly,
}

function compileRoute(route: RouteConfig): CompiledRoute {
  const parts = route.path.split("/").slice(1);
  const rest = parts[parts.length - 1] === "**";
  if (rest) parts.pop();
  const segments = parts.map((p) => (p === "*" ? STAR : p));
  const foldedSegments = segments.map((p) => (p === STAR ? STAR : p.toLowerCase()));
  const methods = route.methods.length === 0 ? null : new Set(route.methods.includes("GET") ? [...route.methods, "HEAD"] : route.methods);
  return { config: route, methods, segments: route.caseSensitive ? segments : foldedSegments, foldedSegments, rest };
}

/** Why a pattern is not acceptable, or undefined. */
function checkPattern(pattern: string): string | undefined {
  const parts = pattern.split("/").slice(1);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === "**") {
      if (i !== parts.length - 1) return "may use ** only as its last segment";
      continue;
    }
    if (part === "*") continue;
    if (part.includes("*")) return "may use * and ** only as whole segments";
    if (part === "" && i !== parts.length - 1) return "must not contain empty segments (//)";
  }
  const literal = pattern.replace(/\*/g, "x");
  const normal = normalizeTarget(literal);
  if (!normal.ok) return `is not a normal path: ${normal.reason}`;
  if (normal.search !== "") return "must not contain a query";
  if (normal.path !== literal) return `is not in normal form (write ${JSON.stringify(normal.path.replace(/x/g, "*"))})`;
  return undefined;
}

function methodMatches(route: CompiledRoute, method: string): boolean {
  return route.methods === null ? KNOWN_METHODS.has(method) : route.methods.has(method);
}

function matchSegments(route: CompiledRoute, path: readonly string[]): Match {
  const pattern = route.segments;
  const count = path.length - 1;
  if (route.rest ? count < pattern.length : count !== pattern.length) {
    // "/api/**" also covers "/api" itself; any other length mismatch is no match.
    return Match.No;
  }
  const caseSensitive = route.config.caseSensitive;
  let result = Match.Exact;
  for (let i = 0; i < pattern.length; i++) {
    const literal = pattern[i]!;
    const segment = path[i + 1]!;
    if (literal === STAR) {
      if (segment === "") return Match.No;
      continue;
    }
    if (segment === literal) continue;
    if (!caseSensitive) {
      if (segment.toLowerCase() !== literal) return Match.No;
      continue;
    }
    if (segment.toLowerCase() !== route.foldedSegments[i]) return Match.No;
    result = Match.CaseOnly;
  }
  return result;
}

function methodsOverlap(a: CompiledRoute, b: CompiledRoute): boolean {
  const ma = a.methods ?? KNOWN_METHODS;
  const mb = b.methods ?? KNOWN_METHODS;
  for (const m of ma) if (mb.has(m)) return true;
  return false;
}

/** True when some path matches both patterns, letter case ignored (a case-only overlap is denied too). */
export function patternsOverlap(a: CompiledRoute, b: CompiledRoute): boolean {
  const pa = a.foldedSegments;
  const pb = b.foldedSegments;
  const shared = Math.min(pa.length, pb.length);
  for (let i = 0; i < shared; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === STAR && y === "") return false;
    if (y === STAR && x === "") return false;
    if (x !== STAR && y !== STAR && x !== y) return false;
  }
  if (pa.length === pb.length) return true;
  // The shorter pattern must be able to cover the longer one's extra segments.
  return pa.length < pb.length ? a.rest : b.rest;
}
