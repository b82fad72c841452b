import type { FastifyReply } from "fastify";
import { html } from "./html.js";
import { renderPage, sendPage } from "./page.js";

/** Titles of error pages, by status: what the person in front of the browser needs to know. */
const TITLES: Readonly<Record<number, string>> = {
  400: "This request cannot be completed",
  401: "You are not signed in",
  403: "This form has expired",
  404: "Page not found",
  413: "This request is too large",
  429: "Too many attempts",
  500: "Something went wrong",
  503: "Temporarily unavailable",
};

/**
 * The error page of the login and consent flows. An authorization error that
 * cannot be sent back to the client (unknown client, unregistered redirect
 * URI: RFC 6749 §4.1.2.1 "MUST NOT automatically redirect") ends here, with
 * the reason and no link anywhere.
 */
export function renderErrorPage(status: number, message: string): string {
  const title = TITLES[status] ?? (status >= 500 ? TITLES[500]! : TITLES[400]!);
  return renderPage({
    title,
    body: html`<h1>${title}</h1>
<p class="alert" role="alert">${message}</p>
<p class="muted">If you came here from an application, go back to it and try again.</p>`,
  });
}

/** Sends the error page for a failure (an RPC's, mapped by oauthFailureFromRpc), with Retry-After when it has one. */
export function sendErrorPage(reply: FastifyReply, failure: { status: number; description: string; retryAfter?: number | undefined }): FastifyReply {
  if (failure.retryAfter !== undefined) reply.header("retry-after", String(failure.retryAfter));
  return sendPage(reply, failure.status, renderErrorPage(failure.status, failure.description));
}
