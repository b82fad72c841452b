import type { FastifyReply } from "fastify";
import { html, SafeHtml } from "./html.js";
import { STYLESHEET, STYLESHEET_HASH } from "./stylesheet.js";

/** The stylesheet is a constant of ours, not input: it goes in verbatim so its CSP hash matches. */
const STYLESHEET_MARKUP = new SafeHtml(STYLESHEET);

/** The shell every page shares: one column, readable on a phone, no script. */
export function renderPage(page: { title: string; body: SafeHtml }): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${page.title} · gatehouse</title>
<link rel="icon" href="data:,">
<style>${STYLESHEET_MARKUP}</style>
</head>
<body>
<main>
<p class="brand">gatehouse</p>
${page.body}
</main>
</body>
</html>
`.value;
}

/**
 * Headers for every page. The Content-Security-Policy allows nothing but the
 * inline stylesheet (by hash), form posts to the gateway itself and to the
 * given form targets, and no framing (`frame-ancestors 'none'`, with
 * X-Frame-Options for older browsers: RFC 6749 §10.13 clickjacking).
 * `form-action` also governs the redirects that follow a form post, so a page
 * whose form ends in a redirect to the client names the client's origin.
 * Referrer-Policy keeps authorization request parameters out of Referer
 * headers; no-store keeps pages with CSRF tokens out of caches.
 */
export function pageHeaders(formTargets: readonly string[] = [], imageSources: readonly string[] = []): Record<string, string> {
  const targets = ["'self'", ...new Set(formTargets)].join(" ");
  const images = ["data:", ...new Set(imageSources)].join(" ");
  return {
    "content-security-policy": `default-src 'none'; style-src ${STYLESHEET_HASH}; img-src ${images}; form-action ${targets}; frame-ancestors 'none'; base-uri 'none'`,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
    pragma: "no-cache",
  };
}

/** Sends a rendered page with its security headers. */
export function sendPage(reply: FastifyReply, status: number, page: string, formTargets: readonly string[] = [], imageSources: readonly string[] = []): FastifyReply {
  return reply.code(status).headers(pageHeaders(formTargets, imageSources)).type("text/html; charset=utf-8").send(page);
}

/**
 * The CSP source expression for where a redirect URI lives: its origin for
 * http(s), its scheme for a native app's private-use scheme (RFC 8252 §7.1).
 * Undefined when it cannot be expressed safely (then only 'self' is allowed).
 */
export function formTargetOf(redirectUri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    return undefined;
  }
  if (url.protocol === "http:" || url.protocol === "https:") return /^[A-Za-z0-9.:[\]-]+$/.test(url.host) ? url.origin : undefined;
  return /^[a-z][a-z0-9+.-]*:$/i.test(url.protocol) ? url.protocol : undefined;
}
