import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RouteConfig } from "../../gateway/config.js";
import { RouteTableError, compileRouteTable, normalizeTarget } from "../../gateway/guard/rules.js";

/**
 * The guard's first two steps, pure: the path normaliser and the route
 * matcher. Tables for the cases that matter, and properties (fast-check) for
 * the promise that no spelling of a path reaches a rule other than the one
 * its normal form reaches.
 */

const route = (name: string, path: string, extra: Partial<RouteConfig> = {}): RouteConfig => ({
  name,
  methods: [],
  path,
  scopes: ["read"],
  scopeMode: "any",
  upstream: "http://127.0.0.1:1",
  forwardAuthorization: false,
  caseSensitive: true,
  errorStyle: "rfc6750",
  audience: [],
  ...extra,
});

/** A path in normal form, and ways to spell it that a client might send. */
const plainSegment = fc
  .array(fc.constantFrom("a", "b", "c", "A", "x", "0", "9", "-", "_", "~", "."), { minLength: 1, maxLength: 6 })
  .map((c) => c.join(""))
  .filter((s) => !s.endsWith("."));
const respell = (seg: string, choices: number[]) =>
  [...seg]
    .map((c, i) => {
      switch ((choices[i] ?? 0) % 3) {
        case 1:
          return `%${c.charCodeAt(0).toString(16).padStart(2, "0").toLowerCase()}`;
        case 2:
          return `%${c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`;
        default:
          return c;
      }
    })
    .join("");

describe("normalizeTarget: RFC 3986 §6.2.2 normal form", () => {
  it.each([
    ["/", "/", ""],
    ["/api/notes", "/api/notes", ""],
    ["/api/notes/", "/api/notes/", ""],
    ["/api/notes?x=1&y=%2F..%2f", "/api/notes", "?x=1&y=%2F..%2f"],
    ["/api/notes?", "/api/notes", "?"],
    ["//api///notes//", "/api/notes/", ""],
    ["/api/./notes", "/api/notes", ""],
    ["/api/x/../notes", "/api/notes", ""],
    ["/api/notes/.", "/api/notes/", ""],
    ["/api/notes/x/..", "/api/notes/", ""],
    ["/.", "/", ""],
    ["/%61%70%69/%6E%6f%74%65%73", "/api/notes", ""],
    ["/a%7e%2d%5f%2E1", "/a~-_.1", ""],
    ["/a%2eb", "/a.b", ""],
    ["/%2ewell-known/x", "/.well-known/x", ""],
    ["/a%20b", "/a%20b", ""],
    ["/a%3fb%23c", "/a%3Fb%23c", ""],
    ["/caf%c3%a9", "/caf%C3%A9", ""],
    ["/a%25b", "/a%25b", ""],
    ["/a+b/c:d@e/f!$&'()*,=", "/a+b/c:d@e/f!$&'()*,=", ""],
  ])("%s → %s", (target, path, search) => {
    expect(normalizeTarget(target)).toEqual({ ok: true, path, search });
  });

  it.each([
    ["api/notes", "absolute path"],
    ["*", "absolute path"],
    ["http://host/api", "absolute path"],
    ["/a/%2e%2e/b", "encoded dot"],
    ["/a/%2E/b", "encoded dot"],
    ["/a/.%2e/b", "encoded dot"],
    ["/a/%2e./b", "encoded dot"],
    ["/a%2fb", "encoded slash"],
    ["/a%2Fb", "encoded slash"],
    ["/a%5cb", "encoded slash"],
    ["/a\\b", "backslash"],
    ["/a%00b", "control"],
    ["/a%0ab", "control"],
    ["/a%7fb", "control"],
    ["/a%252e%252e", "double"],
    ["/a%2541", "double"],
    ["/%25a%61", "double"],
    ["/%25%34%31", "double"],
    ["/a;b", "path parameters"],
    ["/a%3bb", "path parameters"],
    ["/a%3Bb", "path parameters"],
    ["/admin.", "dot"],
    ["/admin./x", "dot"],
    ["/a/...", "dot"],
    ["/..", "above the root"],
    ["/a/../..", "above the root"],
    ["/a%2", "malformed"],
    ["/a%zz", "malformed"],
    ["/a%u002e", "malformed"],
    ["/%c0%ae%c0%ae/x", "UTF-8"],
    ["/%e0%80%af", "UTF-8"],
    ["/%c3", "UTF-8"],
    ["/a b", "percent-encoded"],
    ["/a\"b", "percent-encoded"],
    ["/a<b>", "percent-encoded"],
    ["/a#b", "percent-encoded"],
    ["/é", "percent-encoded"],
    ["/a|b", "percent-encoded"],
  ])("refuses %s (%s)", (target, reason) => {
    const result = normalizeTarget(target);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toContain(reason);
  });

  // --- properties -----------------------------------------------------------

  /** Pieces that paths are made of, including every trick the normaliser must see through or refuse. */
  const piece = fc.constantFrom(
    "a", "b", "Z", "0", "-", "_", "~", ".", "..", "+", "!", ":", "@", "*", "=",
    "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "%41", "%61", "%7e", "%20", "%25", "%2541", "%00", "%0a",
    ";", "%3b", "\\", "%c3%a9", "%C0%AE", "%2", "%zz", "é", " ",
  );
  const segment = fc.array(piece, { maxLength: 4 }).map((p) => p.join(""));
  const target = fc
    .array(fc.tuple(fc.constantFrom("/", "//", "/./"), segment), { minLength: 1, maxLength: 6 })
    .map((parts) => parts.map(([slash, seg]) => slash + seg).join(""));

  /** Decodes every escape, as a byte per char (no UTF-8 decoding: only comparisons need it). */
  const decodeAll = (path: string) => path.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  /** RFC 3986 §5.2.4 remove_dot_segments, with empty segments collapsed, as servers do. */
  const resolve = (path: string) => {
    const segments = path.split("/").slice(1);
    const out: string[] = [];
    let trailing = false;
    segments.forEach((seg, i) => {
      const last = i === segments.length - 1;
      if (seg === "" || seg === ".") trailing = last;
      else if (seg === "..") {
        out.pop();
        trailing = last;
      } else {
        out.push(seg);
        trailing = false;
      }
    });
    return out.length === 0 ? "/" : `/${out.join("/")}${trailing ? "/" : ""}`;
  };

  it("property: an accepted target means one path to every server: decoding before or after resolving dot segments, once or twice, with or without \\ as /", () => {
    fc.assert(
      fc.property(target, (t) => {
        const result = normalizeTarget(t);
        if (!result.ok) return;
        const meaning = decodeAll(result.path);
        expect(resolve(decodeAll(t))).toBe(meaning); // decode, then resolve
        expect(decodeAll(resolve(t))).toBe(meaning); // resolve, then decode
        expect(resolve(decodeAll(t).replace(/\\/g, "/"))).toBe(meaning); // and \ read as / (IIS)
        expect(resolve(decodeAll(decodeAll(t)))).toBe(meaning); // and by a server that decodes twice
      }),
      { numRuns: 20_000 },
    );
  });

  it("property: the normal form is a fixpoint, absolute, without empty or dot segments, and keeps no escape of an unreserved character", () => {
    fc.assert(
      fc.property(target, (t) => {
        const result = normalizeTarget(t);
        if (!result.ok) return;
        expect(normalizeTarget(result.path)).toEqual({ ok: true, path: result.path, search: "" });
        expect(result.path.startsWith("/")).toBe(true);
        expect(result.path).not.toMatch(/\/\/|\/\.\.?(\/|$)|\.(\/|$)/);
        for (const escape of result.path.match(/%[0-9A-Fa-f]{2}/g) ?? []) {
          expect(escape).toBe(escape.toUpperCase());
          expect(decodeAll(escape)).not.toMatch(/[A-Za-z0-9\-._~]/);
        }
      }),
      { numRuns: 20_000 },
    );
  });

  // --- Unicode compatibility forms (issue 10) ---------------------------------

  /** The percent-encoded UTF-8 of a string, as a client would send it. */
  const escapeUtf8 = (text: string) => [...Buffer.from(text, "utf8")].map((b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`).join("");

  it.each([
    ["/api/a/%EF%BC%8E%EF%BC%8E/admin/x", "U+FF0E FULLWIDTH FULL STOP twice: .. to an NFKC-folding upstream"],
    ["/api/a/%ef%bc%8e%ef%bc%8e/admin/x", "the same in lower-case hex"],
    ["/api/%EF%BC%8E/x", "U+FF0E alone: ."],
    ["/api/a%EF%BC%8Fadmin", "U+FF0F FULLWIDTH SOLIDUS: /"],
    ["/api/a%EF%BC%BCadmin", "U+FF3C FULLWIDTH REVERSE SOLIDUS: \\"],
    ["/api/%E2%80%A4%E2%80%A4/x", "U+2024 ONE DOT LEADER"],
    ["/api/%E2%80%A5/x", "U+2025 TWO DOT LEADER: .."],
    ["/api/%E2%80%A6", "U+2026 HORIZONTAL ELLIPSIS: ..."],
    ["/api/a%E2%88%95admin", "U+2215 DIVISION SLASH (best-fit /)"],
    ["/api/a%E2%81%84admin", "U+2044 FRACTION SLASH"],
    ["/api/%EF%B9%92%EF%B9%92/x", "U+FE52 SMALL FULL STOP"],
    ["/api/a%EF%B9%A8b", "U+FE68 SMALL REVERSE SOLIDUS"],
    ["/api/%E2%92%88", "U+2488 DIGIT ONE FULL STOP: 1."],
    ["/api/%E2%84%80", "U+2100 ACCOUNT OF: a/c"],
    ["/api/%E3%80%82%E3%80%82/x", "U+3002 IDEOGRAPHIC FULL STOP (UTS #46 .)"],
    ["/api/%EF%BD%A1/x", "U+FF61 HALFWIDTH IDEOGRAPHIC FULL STOP"],
    ["/api/caf%C3%A9%EF%BC%8E", "a compatibility dot after other non-ASCII text"],
    ["/api/.%EF%BC%8E/x", "an ASCII dot and a compatibility dot"],
  ])("refuses %s (%s): compatibility forms of . / \\ are refused like their ASCII forms", (target) => {
    const result = normalizeTarget(target);
    expect(result).toEqual({ ok: false, reason: expect.stringContaining("compatibility forms") });
  });

  it.each([
    ["/caf%C3%A9", "/caf%C3%A9"],
    ["/%E6%97%A5%E6%9C%AC/%D0%BC%D0%B8%D1%80", "/%E6%97%A5%E6%9C%AC/%D0%BC%D0%B8%D1%80"],
    ["/api/%EF%BC%A1", "/api/%EF%BC%A1"], // U+FF21 FULLWIDTH A folds to "A": not a separator
    ["/a%C2%BDb", "/a%C2%BDb"], // U+00BD "½" folds to "1⁄2": U+2044 is a look-alike only as sent, not inside a fold
  ])("keeps non-ASCII text that folds to no separator: %s", (target, path) => {
    expect(normalizeTarget(target)).toEqual({ ok: true, path, search: "" });
  });

  /** Non-ASCII code points, weighted towards those that fold to separators. */
  const SEPARATOR_FORMS = [0xff0e, 0xff0f, 0xff3c, 0x2024, 0x2025, 0x2026, 0x2215, 0xfe52, 0xfe68, 0x2488, 0x2100, 0x33c2, 0xfe19, 0xfe30, 0x1f100];
  const unicodePiece = fc
    .oneof(
      fc.constantFrom(...SEPARATOR_FORMS),
      fc.constantFrom(0xe9, 0x4e2d, 0xff21, 0x212b, 0x301, 0xbd, 0x1f600),
      fc.integer({ min: 0x80, max: 0x10ffff }).filter((cp) => cp < 0xd800 || cp > 0xdfff),
    )
    .map((cp) => escapeUtf8(String.fromCodePoint(cp)));
  const unicodeTarget = fc
    .array(fc.array(fc.oneof(unicodePiece, fc.constantFrom("a", ".", "..", "%2e", "x")), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 })
    .map((segments) => `/${segments.map((s) => s.join("")).join("/")}`);

  it("property: no accepted path has a segment whose NFKC form is . or .., or contains / or \\", () => {
    fc.assert(
      fc.property(unicodeTarget, (t) => {
        const result = normalizeTarget(t);
        if (!result.ok) return;
        for (const segment of result.path.split("/").slice(1)) {
          const folded = decodeURIComponent(segment).normalize("NFKC");
          expect(folded).not.toBe(".");
          expect(folded).not.toBe("..");
          expect(folded).not.toMatch(/[/\\]/);
        }
      }),
      { numRuns: 20_000 },
    );
  });

  it("property: every code point whose NFKC form contains . / or \\ is refused, alone or inside a segment", () => {
    const folding: number[] = [];
    for (let cp = 0x80; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      if (/[./\\]/.test(String.fromCodePoint(cp).normalize("NFKC"))) folding.push(cp);
    }
    expect(folding.length).toBeGreaterThan(30);
    for (const cp of folding) {
      const escaped = escapeUtf8(String.fromCodePoint(cp));
      expect(normalizeTarget(`/api/${escaped}/x`).ok, `U+${cp.toString(16)}`).toBe(false);
      expect(normalizeTarget(`/api/a${escaped}b`).ok, `U+${cp.toString(16)}`).toBe(false);
    }
  });

  const spelled = fc
    .array(fc.tuple(plainSegment, fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom("", "/", "./", "zz/../", "./zz/../")), { minLength: 1, maxLength: 5 })
    .map((parts) => ({
      normal: `/${parts.map(([seg]) => seg).join("/")}`,
      spelling: parts.map(([seg, choices, noise]) => `/${noise}${respell(seg, choices)}`).join(""),
    }));

  it("property: every harmless spelling of a path (escaped unreserved characters in any case, //, ./, x/../) normalises to it", () => {
    fc.assert(
      fc.property(spelled, ({ normal, spelling }) => {
        expect(normalizeTarget(spelling)).toEqual({ ok: true, path: normal, search: "" });
      }),
      { numRuns: 3_000 },
    );
  });
});

describe("the route table: exactly one rule", () => {
  const { table, overlaps } = compileRouteTable([
    route("notes-get", "/api/notes/**", { methods: ["GET"] }),
    route("notes-post", "/api/notes/**", { methods: ["POST"], scopes: ["write"] }),
    route("admin", "/api/admin/**", { scopes: ["admin"] }),
    route("one", "/api/items/*", {}),
    route("exact", "/api/items/*/detail", {}),
    route("loose", "/Docs/*", { caseSensitive: false }),
    route("root", "/", {}),
  ]);
  const name = (method: string, path: string) => {
    const m = table.match(method, path);
    return m.kind === "route" ? m.route.config.name : m.kind === "case-variant" ? `case-variant:${m.route.config.name}` : m.kind;
  };

  it.each([
    ["GET", "/api/notes", "notes-get"],
    ["GET", "/api/notes/", "notes-get"],
    ["GET", "/api/notes/1/2", "notes-get"],
    ["HEAD", "/api/notes/1", "notes-get"],
    ["POST", "/api/notes/1", "notes-post"],
    ["DELETE", "/api/notes/1", "other-method"],
    ["PUT", "/api/admin/x", "admin"],
    ["TRACE", "/api/admin/x", "other-method"],
    ["QUERY", "/api/admin/x", "other-method"],
    ["GET", "/api/notesx", "none"],
    ["GET", "/api/items/7", "one"],
    ["GET", "/api/items/", "none"],
    ["GET", "/api/items/7/", "none"],
    ["GET", "/api/items/7/detail", "exact"],
    ["GET", "/api/items/7/detail/x", "none"],
    ["GET", "/docs/a", "loose"],
    ["GET", "/DOCS/a", "loose"],
    ["GET", "/", "root"],
    ["GET", "/API/notes/1", "case-variant:notes-get"],
    ["GET", "/api/Admin", "case-variant:admin"],
    ["GET", "/api/ITEMS/1/detail", "case-variant:exact"],
    ["GET", "/api/ITEMS/1", "case-variant:one"],
  ])("%s %s → %s", (method, path, expected) => {
    expect(name(method, path)).toBe(expected);
  });

  it("rules that overlap are reported at start-up, and a request both cover is denied as ambiguous", () => {
    expect(overlaps).toEqual([]);
    const both = compileRouteTable([route("all-api", "/api/**"), route("one-note", "/api/notes/1", { methods: ["GET"] }), route("post-only", "/api/x", { methods: ["POST"] })]);
    expect(both.overlaps).toHaveLength(2);
    expect(both.overlaps[0]).toContain("all-api and one-note");
    expect(both.table.match("GET", "/api/notes/1").kind).toBe("ambiguous");
    expect(both.table.match("GET", "/api/notes/2").kind).toBe("route");
    // Overlap in letter case only counts too: some request would be a case variant of one and match the other.
    expect(compileRouteTable([route("a", "/Api/x"), route("b", "/api/*")]).overlaps).toHaveLength(1);
    // Disjoint methods do not overlap.
    expect(compileRouteTable([route("a", "/x", { methods: ["GET"] }), route("b", "/x", { methods: ["POST"] })]).overlaps).toEqual([]);
  });

  it.each([
    ["/api/**/x", "only as its last segment"],
    ["/api/a*", "whole segments"],
    ["/api//x", "empty segments"],
    ["/api/../x", "normal"],
    ["/api/./x", "normal"],
    ["/api/%2e%2e", "normal"],
    ["/api/%61", "normal form"],
    ["/api/a;b", "normal"],
    ["/api/x?y", "query"],
  ])("a pattern like %s stops the start (%s)", (path, problem) => {
    expect(() => compileRouteTable([route("bad", path)])).toThrow(RouteTableError);
    try {
      compileRouteTable([route("bad", path)]);
    } catch (error) {
      expect((error as RouteTableError).problems[0]).toContain(problem);
    }
  });

  // --- properties -----------------------------------------------------------

  const literal = fc.array(fc.constantFrom("a", "b", "B", "x", "1", "-"), { minLength: 1, maxLength: 3 }).map((c) => c.join(""));
  const patternSegment = fc.oneof(literal, fc.constant("*"));
  const pattern = fc
    .tuple(fc.array(patternSegment, { maxLength: 3 }), fc.boolean())
    .map(([segs, rest]) => `/${[...segs, ...(rest ? ["**"] : [])].join("/")}`);
  const routes = fc.array(fc.tuple(pattern, fc.boolean(), fc.constantFrom<string[]>([], ["GET"], ["POST"])), { minLength: 1, maxLength: 5 });
  const path = fc.array(fc.oneof(literal, fc.constant("")), { maxLength: 4 }).map((segs) => `/${segs.join("/")}`);

  /** An independent reference: each pattern as a regular expression. */
  const reference = (p: string, caseSensitive: boolean) => {
    const rest = p.endsWith("/**");
    const body = (rest ? p.slice(0, -3) : p)
      .split("/")
      .slice(1)
      .map((s) => (s === "*" ? "[^/]+" : s.replace(/[-]/g, "\\-")))
      .join("/");
    const source = rest ? `^${body === "" ? "" : `/${body}`}(?:/.*)?$` : `^/${body}$`;
    return new RegExp(source, caseSensitive ? "" : "i");
  };

  it("property: the matcher agrees with a regular-expression reference; two matches are never resolved to one", () => {
    fc.assert(
      fc.property(routes, path, fc.constantFrom("GET", "POST", "HEAD"), (defs, p, method) => {
        const configs = defs.map(([pat, caseSensitive, methods], i) => route(`r${i}`, pat, { caseSensitive, methods: methods as RouteConfig["methods"] }));
        const compiled = compileRouteTable(configs).table;
        const methodOk = (r: RouteConfig) => r.methods.length === 0 || r.methods.includes(method) || (method === "HEAD" && r.methods.includes("GET"));
        const exact = configs.filter((r) => methodOk(r) && reference(r.path, r.caseSensitive).test(p));
        const folded = configs.filter((r) => methodOk(r) && r.caseSensitive && !reference(r.path, true).test(p) && reference(r.path, false).test(p));
        const anyMethod = configs.filter((r) => reference(r.path, false).test(p));
        const result = compiled.match(method, p);
        if (exact.length > 1) expect(result.kind).toBe("ambiguous");
        else if (folded.length > 0) expect(result.kind).toBe("case-variant");
        else if (exact.length === 1) expect(result).toMatchObject({ kind: "route", route: { config: { name: exact[0]!.name } } });
        else if (anyMethod.length > 0) expect(result.kind).toBe("other-method");
        else expect(result.kind).toBe("none");
      }),
      { numRuns: 5_000 },
    );
  });

  it("property: no spelling of an admin path reaches a weaker rule, the passthrough, or nothing-but-404 by a case trick", () => {
    const guarded = compileRouteTable([
      route("admin", "/api/admin/**", { scopes: ["admin"] }),
      route("notes", "/api/notes/**", { scopes: ["read"] }),
      route("public-item", "/api/public/*", { scopes: ["read"] }),
    ]).table;
    const flipCase = (s: string, flips: boolean[]) => [...s].map((c, i) => (flips[i] === true ? c.toUpperCase() : c)).join("");
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.constantFrom("", "/", "./", "notes/../", "public/../", "../api/"),
        plainSegment,
        (flips, encodings, noise, leaf) => {
          const spelling = `/${flipCase("api", flips.slice(0, 3))}/${noise}${respell(flipCase("admin", flips.slice(3)), encodings)}/${leaf}`;
          const normal = normalizeTarget(spelling);
          if (!normal.ok) return; // refused: 400
          const m = guarded.match("GET", normal.path);
          // Either the admin rule itself, or a case variant of it (denied), never another rule or "none".
          const ruled = m.kind === "route" || m.kind === "case-variant" ? m.route.config.name : m.kind;
          expect(ruled).toBe("admin");
        },
      ),
      { numRuns: 3_000 },
    );
  });
});
