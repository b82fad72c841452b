import { createHash } from "node:crypto";

/**
 * The pages' one small stylesheet. It is inlined into each page and allowed
 * by its hash in the Content-Security-Policy, so the pages need no asset route
 * (which could collide with a guarded path) and no 'unsafe-inline'.
 */
export const STYLESHEET = `
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--text:#1d2330;--muted:#5b6475;--line:#dde1e8;--accent:#2456d6;--accent-text:#fff;--danger:#b42318;--danger-bg:#fdecea}
@media (prefers-color-scheme:dark){:root{--bg:#14171d;--card:#1d2129;--text:#e8eaef;--muted:#a0a8b8;--line:#333a46;--accent:#6d93ff;--accent-text:#0b1020;--danger:#ff8a80;--danger-bg:#3a1d1d}}
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;background:var(--bg);color:var(--text);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:1rem}
main{width:100%;max-width:26rem;margin-top:6vh;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.75rem 1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.06)}
.brand{font-size:.85rem;font-weight:600;letter-spacing:.04em;text-transform:uppercase;color:var(--muted);margin:0 0 1rem}
h1{font-size:1.35rem;line-height:1.3;margin:0 0 .5rem}
p{margin:.5rem 0}
.muted{color:var(--muted);font-size:.9rem}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=text],input[type=password]{width:100%;font:inherit;padding:.65rem .75rem;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--text)}
input:focus,button:focus{outline:3px solid color-mix(in srgb,var(--accent) 40%,transparent);outline-offset:1px}
.check{display:flex;gap:.5rem;align-items:center;font-weight:400;margin:1rem 0 0}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
button{flex:1;font:inherit;font-weight:600;padding:.7rem 1rem;border-radius:8px;border:1px solid var(--line);background:var(--card);color:var(--text);cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:var(--accent-text)}
.alert{background:var(--danger-bg);color:var(--danger);border-radius:8px;padding:.65rem .75rem;margin:1rem 0 0}
ul.scopes{list-style:none;padding:0;margin:1rem 0;border:1px solid var(--line);border-radius:8px}
ul.scopes li{padding:.65rem .75rem;border-top:1px solid var(--line)}
ul.scopes li:first-child{border-top:0}
ul.scopes code{display:block;font-size:.8rem;color:var(--muted)}
.who{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.75rem 1rem;margin-top:1.5rem;padding-top:1rem;border-top:1px solid var(--line)}
.who strong{display:inline-block;max-width:100%;vertical-align:bottom;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.who form button{flex:none;padding:.35rem .75rem;font-weight:400;font-size:.9rem;white-space:nowrap}
code{font-size:.85em}
.origin{border:2px solid var(--danger);background:var(--danger-bg);border-radius:8px;padding:.65rem .75rem;margin:1rem 0}
.origin strong{font-size:1.15rem;word-break:break-all}
img.logo{display:block;max-width:4rem;max-height:4rem;margin:0 0 .75rem}
`.trim();

/** CSP source expression that allows exactly STYLESHEET inline (CSP Level 3 §2.3.1 hash-source). */
export const STYLESHEET_HASH = `'sha256-${createHash("sha256").update(STYLESHEET).digest("base64")}'`;
