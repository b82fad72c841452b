import { createBrowserSessions, type BrowserSessions } from "./browser-session.js";
import { createCsrf, type Csrf } from "./csrf.js";
import type { GatewayDeps } from "./deps.js";
import type { TenantRoute } from "./tenant-routing.js";

/** What a tenant's login, consent and logout forms need: its session cookies and its CSRF key. */
export interface TenantBrowser {
  readonly sessions: BrowserSessions;
  readonly csrf: Csrf;
}

/**
 * Each tenant's session cookies and CSRF key (issue 11: nothing of a browser
 * crosses tenants). The default tenant's are as before tenants. A named
 * tenant's cookies are called `{cookieName}-{tenant}` with `Path=/{tenant}`,
 * so the browser neither sends them to another tenant nor lets one tenant's
 * cookie overwrite another's; the session they name lives in that tenant's
 * store, which the authz service asks (GetSession with the tenant named), so
 * a cookie copied to another tenant's path names no session there; and the
 * CSRF tokens are keyed per tenant.
 */
export function createTenantBrowsers(deps: Pick<GatewayDeps, "config" | "authz">, serviceCredential: string): (tenant: TenantRoute) => TenantBrowser {
  const { config, authz } = deps;
  const secure = config.issuer.startsWith("https:");
  const browsers = new Map<string, TenantBrowser>();
  return (tenant) => {
    let browser = browsers.get(tenant.name);
    if (browser === undefined) {
      browser =
        tenant.base === ""
          ? { sessions: createBrowserSessions({ authz, cookieName: config.session.cookieName, secure }), csrf: createCsrf(serviceCredential) }
          : {
              sessions: createBrowserSessions({ authz, cookieName: `${config.session.cookieName}-${tenant.name}`, secure, path: tenant.base, rpcHeaders: tenant.rpcHeaders }),
              csrf: createCsrf(serviceCredential, tenant.name),
            };
      browsers.set(tenant.name, browser);
    }
    return browser;
  };
}
