import { html, type SafeHtml } from "./html.js";
import { renderPage } from "./page.js";

/** A page that only tells something (signed in, signed out, no access), with an optional form or link under it. */
export function renderMessagePage(view: { title: string; message: string; form?: SafeHtml; link?: { href: string; text: string } }): string {
  return renderPage({
    title: view.title,
    body: html`<h1>${view.title}</h1>
<p>${view.message}</p>
${view.form}
${view.link === undefined ? undefined : html`<p><a href="${view.link.href}">${view.link.text}</a></p>`}`,
  });
}

/** The sign-out form of the signed-in page. */
export function signOutForm(action: string, csrfToken: string): SafeHtml {
  return html`<form method="post" action="${action}">
<input type="hidden" name="csrf_token" value="${csrfToken}">
<div class="actions"><button type="submit">Sign out</button></div>
</form>`;
}
