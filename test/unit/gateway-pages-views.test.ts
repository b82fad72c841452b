import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { renderConsentPage } from "../../gateway/views/consent-page.js";
import { escapeHtml, html, SafeHtml } from "../../gateway/views/html.js";
import { renderLoginPage } from "../../gateway/views/login-page.js";
import { formTargetOf, pageHeaders } from "../../gateway/views/page.js";
import { STYLESHEET, STYLESHEET_HASH } from "../../gateway/views/stylesheet.js";

const HOSTILE = `<script>alert('x')</script>"&`;

describe("views", () => {
  it("escapes the five characters that end text or a quoted attribute", () => {
    expect(escapeHtml(`<>&"'`)).toBe("&lt;&gt;&amp;&quot;&#39;");
  });

  it("html`` escapes every interpolation except its own output", () => {
    const inner = html`<b>${HOSTILE}</b>`;
    expect(html`<p title="${HOSTILE}">${inner}${[HOSTILE, 1]}${undefined}${false}</p>`.value).toBe(
      `<p title="${escapeHtml(HOSTILE)}"><b>${escapeHtml(HOSTILE)}</b>${escapeHtml(HOSTILE)}1</p>`,
    );
    expect(html`${{ value: "<i>" } as unknown as string}`.value).not.toContain("<i>");
    expect(html`${new SafeHtml("<i>")}`.value).toBe("<i>");
  });

  it("the login and consent pages escape everything they show", () => {
    const pages = [
      renderLoginPage({ action: "/login", csrfToken: HOSTILE, clientName: HOSTILE, authorizationRequest: HOSTILE, username: HOSTILE, problem: HOSTILE }),
      renderConsentPage({
        action: "/oauth2/consent",
        csrfToken: HOSTILE,
        requestId: HOSTILE,
        clientName: HOSTILE,
        clientId: HOSTILE,
        scopes: [{ name: HOSTILE, description: HOSTILE }],
        redirectUri: `https://x.test/${HOSTILE}`,
        subject: HOSTILE,
        switchAccount: { action: "/logout", csrfToken: HOSTILE, authorizationRequest: HOSTILE },
      }),
    ];
    for (const page of pages) {
      expect(page).not.toContain("<script>");
      expect(page).not.toContain(HOSTILE);
      expect(page).toContain(escapeHtml(HOSTILE));
    }
  });

  it("the CSP allows exactly the inline stylesheet", () => {
    expect(STYLESHEET_HASH).toBe(`'sha256-${createHash("sha256").update(STYLESHEET).digest("base64")}'`);
    expect(pageHeaders()["content-security-policy"]).toBe(
      `default-src 'none'; style-src ${STYLESHEET_HASH}; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
  });

  it.each([
    ["https://app.example.com/cb?x=1", "https://app.example.com"],
    ["http://127.0.0.1:3000/callback", "http://127.0.0.1:3000"],
    ["com.example.app:/oauth2redirect", "com.example.app:"],
    ["not a uri", undefined],
    ["javascript;x:alert(1)", undefined],
  ])("form-action source for redirect URI %s is %s", (uri, expected) => {
    expect(formTargetOf(uri)).toBe(expected);
  });
});
