import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { basic, SECRETS } from "../support/authz.js";
import { startTestStack, type TestStack } from "../support/stack.js";

/**
 * Bad input never gets a 500, a stack trace or a hang: a clear 4xx in the
 * RFC's shape (JSON for the OAuth endpoints, an HTML page for the browser
 * pages), and the process stays healthy afterwards.
 */
let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ redisUrl: inject("redisUrl") });
});
afterAll(() => stack.close());

const FORM = "application/x-www-form-urlencoded";

async function send(path: string, body: string | Uint8Array | undefined, headers: Record<string, string> = { "content-type": FORM }): Promise<Response> {
  return fetch(`${stack.gateway.url}${path}`, { method: "POST", headers, ...(body === undefined ? {} : { body }) });
}

/** RFC 6749 §5.2 invalid_request (or the given error), never a 5xx, no internals in the description. */
async function expectInvalidRequest(response: Response, status = 400, error = "invalid_request"): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
  expect(response.headers.get("cache-control")).toBe("no-store");
  const body = (await response.json()) as { error: string; error_description: string };
  expect(body.error).toBe(error);
  expect(body.error_description).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/);
  expect(body.error_description).not.toMatch(/\bat \S+:\d+|Error:|FST_|node_modules/);
  return body.error_description;
}

describe("the token endpoint refuses bad input with 400 invalid_request (RFC 6749 §5.2)", () => {
  it.each([
    ["application/json", "{\"grant_type\":\"authorization_code\"}"],
    ["text/plain", "grant_type=authorization_code"],
    ["multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nauthorization_code\r\n--x--"],
    ["application/xml", "<grant_type/>"],
    ["application/x-www-form-urlencoded-but-not", "grant_type=authorization_code"],
  ])("content type %s", async (contentType, body) => {
    const description = await expectInvalidRequest(await send("/oauth2/token", body, { "content-type": contentType }));
    expect(description).toBe("the content type must be application/x-www-form-urlencoded");
  });

  it("a body without any content type", async () => {
    await expectInvalidRequest(await send("/oauth2/token", "grant_type=authorization_code", {}));
  });

  it("no body at all", async () => {
    const description = await expectInvalidRequest(await send("/oauth2/token", undefined, {}));
    expect(description).toBe("the request must carry an application/x-www-form-urlencoded body");
  });

  it("a form declared in another charset than UTF-8", async () => {
    await expectInvalidRequest(await send("/oauth2/token", "grant_type=authorization_code", { "content-type": `${FORM}; charset=ISO-8859-1` }));
  });

  it("accepts the form with charset=UTF-8 declared", async () => {
    // Well-formed, so it reaches the grant logic: unknown client.
    await expectInvalidRequest(await send("/oauth2/token", "grant_type=authorization_code&code=x", { "content-type": `${FORM}; charset=UTF-8` }), 400, "invalid_client");
  });

  it.each([
    ["a lone percent sign", "grant_type=authorization_code&code=%"],
    ["a truncated escape", "grant_type=authorization_code&code=ab%4"],
    ["a non-hex escape", "grant_type=authorization_code&code=%zz"],
    ["a parameter without a name", "grant_type=authorization_code&=value"],
  ])("malformed form: %s", async (_name, body) => {
    await expectInvalidRequest(await send("/oauth2/token", body));
  });

  it.each([
    ["an invalid byte", "%FF"],
    ["a truncated sequence", "%C3%28"],
    ["an overlong encoding of /", "%C0%AF"],
    ["a UTF-16 surrogate", "%ED%A0%80"],
    ["a code point beyond U+10FFFF", "%F4%90%80%80"],
  ])("invalid UTF-8 after percent-decoding: %s", async (_name, encoded) => {
    const description = await expectInvalidRequest(await send("/oauth2/token", `grant_type=authorization_code&code=${encoded}`));
    expect(description).toBe("a parameter is not valid UTF-8");
  });

  it("invalid UTF-8 sent raw, not percent-encoded", async () => {
    const body = Buffer.concat([Buffer.from("grant_type=authorization_code&code="), Buffer.from([0xc3, 0x28])]);
    await expectInvalidRequest(await send("/oauth2/token", body));
  });

  it("a repeated unknown parameter is refused too (RFC 6749 §3.1)", async () => {
    await expectInvalidRequest(await send("/oauth2/token", "grant_type=authorization_code&foo=1&foo=2"));
  });

  it("an empty value still counts as given: code=&code=x is a repetition", async () => {
    await expectInvalidRequest(await send("/oauth2/token", "grant_type=authorization_code&code=&code=x"));
  });

  it("a known parameter outside its RFC 6749 Appendix A syntax", async () => {
    const description = await expectInvalidRequest(await send("/oauth2/token", "grant_type=authorization_code&code=abc%0Adef"));
    expect(description).toBe("code is malformed");
  });

  it("an unknown parameter with an odd but well-formed value is ignored (RFC 6749 §3.2)", async () => {
    const response = await send("/oauth2/token", `grant_type=made_up&x-odd=${encodeURIComponent("<script>\"'&\u2603\u0000")}`);
    await expectInvalidRequest(response, 400, "unsupported_grant_type");
  });

  it("an unknown parameter with a huge value", async () => {
    await expectInvalidRequest(await send("/oauth2/token", `grant_type=authorization_code&junk=${"a".repeat(5_000)}`));
  });

  it("too many parameters", async () => {
    const body = ["grant_type=authorization_code", ...Array.from({ length: 80 }, (_, i) => `p${i}=1`)].join("&");
    await expectInvalidRequest(await send("/oauth2/token", body));
  });

  it("a body over bodyLimitBytes is 413, in the RFC's shape", async () => {
    const body = `grant_type=authorization_code&code=${"a".repeat(stack.gateway.config.bodyLimitBytes)}`;
    const description = await expectInvalidRequest(await send("/oauth2/token", body), 413);
    expect(description).toBe("the request body is too large");
  });

  it("a chunked body over bodyLimitBytes is 413 as well", async () => {
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 40; i++) controller.enqueue(new TextEncoder().encode(`p${i}=${"a".repeat(1_000)}&`));
        controller.close();
      },
    });
    const response = await fetch(`${stack.gateway.url}/oauth2/token`, { method: "POST", headers: { "content-type": FORM }, body: chunks, duplex: "half" } as RequestInit);
    await expectInvalidRequest(response, 413);
  });

  it("a malformed Basic header is invalid_client, 401", async () => {
    await expectInvalidRequest(await send("/oauth2/token", "grant_type=authorization_code&code=x", { "content-type": FORM, authorization: "Basic !!!not-base64" }), 401, "invalid_client");
  });

  it("Basic credentials that decode to invalid UTF-8 or lack a colon are invalid_client", async () => {
    for (const raw of [Buffer.from([0xff, 0xfe, 0x3a, 0x41]), Buffer.from("no-colon-here")]) {
      await expectInvalidRequest(
        await send("/oauth2/token", "grant_type=authorization_code&code=x", { "content-type": FORM, authorization: `Basic ${raw.toString("base64")}` }),
        401,
        "invalid_client",
      );
    }
  });

  it("introspection and revocation refuse the same bad input the same way", async () => {
    for (const path of ["/oauth2/introspect", "/oauth2/revoke"]) {
      await expectInvalidRequest(await send(path, "{}", { "content-type": "application/json" }));
      await expectInvalidRequest(await send(path, "token=a&token=b"));
      await expectInvalidRequest(await send(path, "token=%C0%AF"));
      await expectInvalidRequest(await send(path, `token=${"a".repeat(20_000)}`), 413);
    }
  });
});

describe("the browser pages refuse bad input with an HTML page", () => {
  async function expectErrorPage(response: Response, status: number): Promise<string> {
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const page = await response.text();
    expect(page).not.toMatch(/\bat \S+:\d+|FST_|node_modules/);
    return page;
  }

  it("login: JSON instead of a form", async () => {
    await expectErrorPage(await send("/login", "{\"username\":\"alice\"}", { "content-type": "application/json" }), 400);
  });

  it("login: an oversized body", async () => {
    await expectErrorPage(await send("/login", `username=${"a".repeat(20_000)}`), 413);
  });

  it("login: an unexpected field", async () => {
    const page = await expectErrorPage(await send("/login", "username=alice&password=x&csrf_token=abc&admin=1"), 400);
    expect(page).toContain("unexpected field");
  });

  it("consent: invalid UTF-8 and duplicates", async () => {
    await expectErrorPage(await send("/oauth2/consent", "request_id=%FF&csrf_token=a&decision=allow"), 400);
    await expectErrorPage(await send("/oauth2/consent", "request_id=a&request_id=b&csrf_token=a&decision=allow"), 400);
  });

  it("consent: a decision that is neither allow nor deny", async () => {
    await expectErrorPage(await send("/oauth2/consent", "request_id=a&csrf_token=a&decision=maybe"), 400);
  });

  it("authorize: invalid UTF-8, malformed escapes and over-long parameters in the query", async () => {
    for (const query of ["client_id=web&state=%C3%28", "client_id=web&state=%Z1", `client_id=web&state=${"s".repeat(1_100)}`]) {
      await expectErrorPage(await fetch(`${stack.gateway.url}/oauth2/authorize?${query}`, { redirect: "manual" }), 400);
    }
  });
});

describe("arbitrary input (fast-check)", () => {
  it("any bytes posted as a form to the token endpoint: a 4xx JSON error, never a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const response = await send("/oauth2/token", bytes, { "content-type": FORM, ...basic("web", SECRETS.web).headers });
        expect(response.status).toBeGreaterThanOrEqual(400);
        expect(response.status).toBeLessThan(500);
        expect(((await response.json()) as { error: string }).error).toMatch(/^[a-z_]+$/);
      }),
      { numRuns: 150 },
    );
  });

  it("any query on the authorization endpoint: a page or a redirect the authz service chose, never a 5xx", async () => {
    const pieces = fc.oneof(
      fc.constantFrom("client_id=web", "response_type=code", "redirect_uri=https%3A%2F%2Fweb.test%2Fcallback", "state=s", "scope=read", "%", "%FF", "&", "=", "+"),
      fc.string({ maxLength: 20 }).map(encodeURIComponent),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(pieces, { maxLength: 12 }), async (parts) => {
        const response = await fetch(`${stack.gateway.url}/oauth2/authorize?${parts.join("")}`, { redirect: "manual" });
        expect([200, 302, 400]).toContain(response.status);
        if (response.status === 302) expect(response.headers.get("location")!.startsWith("https://web.test/callback?")).toBe(true);
        await response.body?.cancel();
      }),
      { numRuns: 150 },
    );
  });

  it("the process is healthy after all of it", async () => {
    const response = await fetch(`${stack.gateway.url}/healthz`);
    expect(response.status).toBe(200);
  });
});
