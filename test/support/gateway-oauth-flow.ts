import { expect } from "vitest";

/**
 * A user agent over plain fetch for HTTP-level tests of the gateway's pages:
 * it keeps cookies (as a browser would, per name), never follows redirects by
 * itself, and reads forms out of the HTML the gateway sends. The browser
 * tests (test/e2e) cover the same flows in Chromium.
 */
export class UserAgent {
  readonly cookies = new Map<string, string>();

  constructor(readonly baseUrl: string) {}

  async get(pathOrUrl: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.#send(pathOrUrl, { method: "GET", headers });
  }

  /** Posts a form the way a browser does: application/x-www-form-urlencoded. */
  async post(pathOrUrl: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return this.#send(pathOrUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** Submits the form whose action is `action` on `html`, with its hidden fields plus `fields`. */
  async submit(html: string, action: string, fields: Record<string, string> = {}): Promise<Response> {
    return this.post(action, { ...formFields(html, action), ...fields });
  }

  async #send(pathOrUrl: string, init: RequestInit & { headers: Record<string, string> }): Promise<Response> {
    const url = new URL(pathOrUrl, this.baseUrl);
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    const response = await fetch(url, { ...init, redirect: "manual", headers: { ...(cookie === "" ? {} : { cookie }), ...init.headers } });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const equals = pair!.indexOf("=");
      const name = pair!.slice(0, equals).trim();
      const value = pair!.slice(equals + 1).trim();
      if (/max-age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
}

/** The hidden fields of the form posting to `action` (values unescaped, as a browser would submit them). */
export function formFields(html: string, action: string): Record<string, string> {
  const forms = [...html.matchAll(/<form\b[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/g)].filter((m) => unescapeHtml(m[1]!) === action);
  expect(forms, `a form posting to ${action}`).toHaveLength(1);
  const fields: Record<string, string> = {};
  for (const input of forms[0]![2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[input[1]!] = unescapeHtml(input[2]!);
  }
  return fields;
}

export function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, entity: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" })[entity]!);
}

/** Signs in through the login page (GET /login, POST /login); expects success. */
export async function signIn(agent: UserAgent, username = "alice", password = "correct horse"): Promise<void> {
  const page = await agent.get("/login");
  expect(page.status).toBe(200);
  const response = await agent.submit(await page.text(), "/login", { username, password });
  expect(response.status).toBe(303);
}

/**
 * Runs an authorization request through the gateway as a signed-in browser:
 * the authorize URL, the consent page when shown, and the decision. Returns
 * the URL the gateway finally redirected to.
 */
export async function authorizeThroughGateway(
  agent: UserAgent,
  parameters: Record<string, string>,
  decision: "allow" | "deny" = "allow",
): Promise<{ location: URL; consentShown: boolean }> {
  const response = await agent.get(`/oauth2/authorize?${new URLSearchParams(parameters)}`);
  if (response.status === 302) return { location: new URL(response.headers.get("location")!), consentShown: false };
  expect(response.status, "the consent page").toBe(200);
  const html = await response.text();
  expect(html).toContain("wants to access your account");
  const decided = await agent.submit(html, "/oauth2/consent", { decision, remember: "yes" });
  expect(decided.status).toBe(303);
  return { location: new URL(decided.headers.get("location")!), consentShown: true };
}
