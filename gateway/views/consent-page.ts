import { html } from "./html.js";
import { renderPage } from "./page.js";

export interface ConsentPageView {
  /** Where the decision posts (the configured consent path). */
  action: string;
  csrfToken: string;
  /** The parked authorization request's handle (AuthorizeResponse.request_id). */
  requestId: string;
  clientName: string;
  clientId: string;
  /** Each requested scope with the description the configuration gives it. */
  scopes: ReadonlyArray<{ name: string; description: string }>;
  /** RFC 8707: the resources (an MCP server, an API) the client will reach with these permissions; empty: none named. */
  resources?: ReadonlyArray<{ uri: string; name: string }>;
  /** Where the browser goes afterwards, shown so the resource owner can recognise the client. */
  redirectUri: string;
  subject: string;
  /** The user's name (OpenID Connect claim `name`), to greet them; "" or absent: greeted by subject. */
  userName?: string;
  /**
   * Where the client comes from (issue 15): "" the configuration;
   * "registration" (RFC 7591) or "metadata-document" (its client_id is the
   * URL of its metadata document), both self-asserted.
   */
  clientSource?: string;
  /** A metadata-document client's host: shown prominently (the draft's phishing warning). */
  clientHost?: string;
  /** RFC 7591 §2 logo_uri (an https URL), shown beside the name; the page's CSP allows its origin. */
  logoUri?: string;
  /** "Use another account": signs out and resumes the authorization request. */
  switchAccount: { action: string; csrfToken: string; authorizationRequest: string };
}

/**
 * The consent page (RFC 6749 §4.1.1: the authorization server "obtains an
 * authorization decision"): the client's name and each scope's description,
 * Allow and Deny, and whether to remember the decision.
 */
export function renderConsentPage(view: ConsentPageView): string {
  const destination = hostOf(view.redirectUri);
  return renderPage({
    title: `Allow ${view.clientName}?`,
    body: html`<p class="greeting">Hello, ${view.userName === undefined || view.userName === "" ? view.subject : view.userName}</p>
${view.logoUri === undefined || view.logoUri === "" ? undefined : html`<img class="logo" src="${view.logoUri}" alt="">`}
<h1><strong>${view.clientName}</strong> wants to access your account</h1>
${provenance(view)}
<p class="muted">It is asking to:</p>
<ul class="scopes">
${view.scopes.map((scope) => html`<li>${scope.description}<code>${scope.name}</code></li>`)}
</ul>
${view.scopes.length === 0 ? html`<p class="muted">It asks for no particular permission, only to know that you signed in.</p>` : undefined}
${(view.resources ?? []).length === 0
  ? undefined
  : html`<p class="muted">At:</p>
<ul class="scopes resources">
${(view.resources ?? []).map((resource) => html`<li>${resource.name === "" ? hostOf(resource.uri) : resource.name}<code>${resource.uri}</code></li>`)}
</ul>`}
<form method="post" action="${view.action}">
<input type="hidden" name="request_id" value="${view.requestId}">
<input type="hidden" name="csrf_token" value="${view.csrfToken}">
<label class="check"><input type="checkbox" name="remember" value="yes"> Don't ask again for these permissions</label>
<div class="actions">
<button type="submit" name="decision" value="deny">Deny</button>
<button type="submit" name="decision" value="allow" class="primary" autofocus>Allow</button>
</div>
</form>
<p class="muted">You will be sent back to <strong>${destination}</strong>.<br>Client ID: <code>${view.clientId}</code></p>
<div class="who"><span class="muted">Signed in as <strong>${view.subject}</strong></span>
<form method="post" action="${view.switchAccount.action}">
<input type="hidden" name="csrf_token" value="${view.switchAccount.csrfToken}">
<input type="hidden" name="authorization_request" value="${view.switchAccount.authorizationRequest}">
<button type="submit">Use another account</button>
</form></div>`,
  });
}

/**
 * What the page can say about who the client is. A metadata document's host
 * is the one thing about it that is verified (it served the document over
 * https); its name and logo are whatever the document says, so the host is
 * shown large (draft-ietf-oauth-client-id-metadata-document, security
 * considerations: "the authorization server SHOULD display the hostname of
 * the client_id" to counter impersonation). A registered client's name is
 * self-asserted too.
 */
function provenance(view: ConsentPageView) {
  if (view.clientSource === "metadata-document" && view.clientHost !== undefined && view.clientHost !== "") {
    return html`<p class="origin">This application is published by <strong>${view.clientHost}</strong><br><span class="muted">Its name and logo are what that site says. Continue only if you trust ${view.clientHost}.</span></p>`;
  }
  if (view.clientSource === "registration") {
    return html`<p class="origin">This application registered itself. <span class="muted">Its name is not verified: continue only if you started this sign-in.</span></p>`;
  }
  return undefined;
}

function hostOf(uri: string): string {
  try {
    const url = new URL(uri);
    return url.host === "" ? url.protocol : url.host;
  } catch {
    return uri;
  }
}
