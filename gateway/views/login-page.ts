import { html } from "./html.js";
import { renderPage } from "./page.js";

export interface LoginPageView {
  /** Where the form posts (the configured login path). */
  action: string;
  csrfToken: string;
  /** The client the resource owner is signing in for, when the login is part of an authorization request. */
  clientName?: string;
  /** A metadata-document client's host (issue 15): shown with its self-asserted name. */
  clientHost?: string;
  /** The authorization request to resume after signing in (re-serialized parameters, see oauth-routes). */
  authorizationRequest?: string;
  /** Kept across a failed attempt so only the password is typed again. */
  username?: string;
  /** What went wrong: never which of username or password. */
  problem?: string;
}

/** The login page: username, password, and nothing that tells which usernames exist. */
export function renderLoginPage(view: LoginPageView): string {
  return renderPage({
    title: "Sign in",
    body: html`<h1>Sign in</h1>
${view.clientName === undefined ? html`<p class="muted">Use your account to continue.</p>` : html`<p class="muted">to continue to <strong>${view.clientName}</strong>${view.clientHost === undefined || view.clientHost === "" ? undefined : html` (published by <strong>${view.clientHost}</strong>)`}</p>`}
${view.problem === undefined ? undefined : html`<p class="alert" role="alert">${view.problem}</p>`}
<form method="post" action="${view.action}">
<input type="hidden" name="csrf_token" value="${view.csrfToken}">
${view.authorizationRequest === undefined ? undefined : html`<input type="hidden" name="authorization_request" value="${view.authorizationRequest}">`}
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${view.username ?? ""}" autocomplete="username" autocapitalize="none" spellcheck="false" required${view.username === undefined ? html` autofocus` : undefined}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${view.username === undefined ? undefined : html` autofocus`}>
<div class="actions"><button type="submit" class="primary">Sign in</button></div>
</form>`,
  });
}
