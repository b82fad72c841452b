import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/**
 * A real nginx (Debian's `nginx` package) in front of gatehouse's check
 * endpoint, for the tests and the benchmark. The configuration is written to
 * a temporary directory (pid file, logs and temp paths inside it), nginx runs
 * in the foreground with one worker, and stops with SIGQUIT (a graceful
 * shutdown). The site (upstream groups and `server`) is rendered by
 * `nginxGuardSite`, which also renders the README's snippet
 * (test/integration/check-endpoint-nginx.test.ts checks that the README holds
 * it verbatim).
 */

export interface NginxGuardOptions {
  /** gatehouse's address, e.g. 127.0.0.1:8080. */
  readonly gatehouse: string;
  /** config.paths.check. */
  readonly checkPath: string;
  /** The upstream's address, e.g. 127.0.0.1:3000. */
  readonly upstream: string;
  /** config.guard.identityHeaders. */
  readonly identityHeaders: { readonly subject: string; readonly client: string; readonly scope: string };
}

/** What the README shows: gatehouse's defaults, and placeholder addresses. */
export const README_NGINX_OPTIONS: NginxGuardOptions & { listen: string } = {
  listen: "80",
  gatehouse: "127.0.0.1:8080",
  checkPath: "/.gatehouse/check",
  upstream: "127.0.0.1:3000",
  identityHeaders: { subject: "X-Gatehouse-Subject", client: "X-Gatehouse-Client", scope: "X-Gatehouse-Scope" },
};

/** Header fields that make common upstream frameworks rewrite the path or the method (issue 10). */
export const PATH_REWRITING_HEADERS = [
  "X-Original-URL",
  "X-Rewrite-URL",
  "X-Original-URI",
  "X-Forwarded-Uri",
  "X-Forwarded-Path",
  "X-Envoy-Original-Path",
  "X-HTTP-Method-Override",
  "X-HTTP-Method",
  "X-Method-Override",
] as const;

/** `X-Gatehouse-Subject` → `x_gatehouse_subject`, as nginx names a header's variable. */
const variablePart = (header: string) => header.toLowerCase().replace(/-/g, "_");

/**
 * The part of nginx.conf (inside `http { }`) that puts gatehouse in front of
 * an application: the two upstream groups (with keep-alive connections) and
 * a `server` whose every request is checked first.
 */
export function nginxGuardSite(options: NginxGuardOptions & { listen: string }): string {
  return [
    "upstream gatehouse {",
    `    server ${options.gatehouse};`,
    "    keepalive 32;",
    "}",
    "upstream app {",
    `    server ${options.upstream};`,
    "    keepalive 32;",
    "}",
    "",
    "server {",
    `    listen ${options.listen};`,
    "",
    ...nginxGuardLocations(options)
      .split("\n")
      .map((line) => (line === "" ? "" : `    ${line}`)),
    "}",
  ].join("\n");
}

/** The same nginx without gatehouse: the benchmark's baseline. */
function plainSite(options: NginxGuardOptions & { listen: string }): string {
  return [
    "upstream app {",
    `    server ${options.upstream};`,
    "    keepalive 32;",
    "}",
    "server {",
    `    listen ${options.listen};`,
    "    location / {",
    "        proxy_http_version 1.1;",
    '        proxy_set_header Connection "";',
    "        proxy_pass http://app;",
    "    }",
    "}",
  ].join("\n");
}

/**
 * The `location` blocks of a `server` that nginx guards with gatehouse: every
 * request is checked (auth_request), the identity gatehouse verified replaces
 * whatever the caller sent, and the upstream is sent the target gatehouse
 * checked, in normal form (as the sidecar sends it).
 */
function nginxGuardLocations(options: NginxGuardOptions): string {
  const identity = [options.identityHeaders.subject, options.identityHeaders.client, options.identityHeaders.scope];
  const lines = [
    "# Every request is checked by gatehouse first.",
    "location / {",
    `    auth_request ${options.checkPath};`,
    ...identity.map((h) => `    auth_request_set $gatehouse_${variablePart(h).replace(/^x_gatehouse_/, "")} $upstream_http_${variablePart(h)};`),
    "    auth_request_set $gatehouse_authorization $upstream_http_x_gatehouse_authorization;",
    "    auth_request_set $gatehouse_target $upstream_http_x_gatehouse_target;",
    "    auth_request_set $gatehouse_status $upstream_status;",
    "    auth_request_set $gatehouse_challenge $upstream_http_www_authenticate;",
    "    # What gatehouse verified replaces what the caller sent (an empty value removes the field).",
    ...identity.map((h) => `    proxy_set_header ${h} $gatehouse_${variablePart(h).replace(/^x_gatehouse_/, "")};`),
    "    # The bearer token reaches the upstream only on routes with forwardAuthorization.",
    "    proxy_set_header Authorization $gatehouse_authorization;",
    "    # Fields that make upstream frameworks rewrite the path or the method.",
    ...PATH_REWRITING_HEADERS.map((h) => `    proxy_set_header ${h} "";`),
    "    proxy_set_header Host $host;",
    "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "    proxy_set_header X-Forwarded-Proto $scheme;",
    "    proxy_http_version 1.1;",
    '    proxy_set_header Connection "";',
    "    # The target gatehouse checked, in normal form.",
    "    proxy_pass http://app$gatehouse_target;",
    "    error_page 403 = @gatehouse_forbidden;",
    "    error_page 500 = @gatehouse_error;",
    "}",
    "",
    "# The check: internal only, never reachable from outside.",
    `location = ${options.checkPath} {`,
    "    internal;",
    `    proxy_pass http://gatehouse${options.checkPath};`,
    "    proxy_pass_request_body off;",
    '    proxy_set_header Content-Length "";',
    "    proxy_set_header X-Original-Method $request_method;",
    "    proxy_set_header X-Original-URI $request_uri;",
    "    # A client could send Traefik's description; gatehouse refuses a request described twice.",
    '    proxy_set_header X-Forwarded-Method "";',
    '    proxy_set_header X-Forwarded-Uri "";',
    "    proxy_set_header X-Forwarded-Host $host;",
    "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "    proxy_set_header X-Forwarded-Proto $scheme;",
    "    proxy_http_version 1.1;",
    '    proxy_set_header Connection "";',
    "}",
    "",
    "# nginx copies the challenge of a 401 only; RFC 6750 §3 puts one on a 403 too.",
    "location @gatehouse_forbidden {",
    "    add_header WWW-Authenticate $gatehouse_challenge always;",
    "    return 403;",
    "}",
    "",
    "# nginx answers 500 for any status of the check but 2xx, 401 and 403: keep gatehouse's 503.",
    "location @gatehouse_error {",
    "    if ($gatehouse_status = 503) {",
    "        add_header Retry-After 1 always;",
    "        return 503;",
    "    }",
    "    return 500;",
    "}",
  ];
  return lines.join("\n");
}

/** The nginx binary: on PATH, or Debian's /usr/sbin/nginx (PATH may not hold /usr/sbin). */
export function findNginx(): string | undefined {
  const candidates = [...(process.env.PATH ?? "").split(delimiter).filter((d) => d !== "").map((d) => join(d, "nginx")), "/usr/sbin/nginx"];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next
    }
  }
  return undefined;
}

export interface RunningNginx {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The rendered nginx.conf. */
  readonly config: string;
  /** nginx's error log so far (for failure messages). */
  errorLog(): string;
  close(): Promise<void>;
}

/**
 * Starts nginx in the foreground on `port` with the guard's locations and
 * waits until the port answers. The caller chooses the port (a free one).
 */
export async function startNginx(
  options: NginxGuardOptions & {
    port: number;
    workerConnections?: number;
    plainProxy?: boolean;
    /** Requests per client connection before nginx closes it (its default, 1000, when unset); the benchmark raises it. */
    keepaliveRequests?: number;
  },
): Promise<RunningNginx> {
  const binary = findNginx();
  if (binary === undefined) throw new Error("nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)");
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-nginx-"));
  for (const sub of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, sub));
  const site = (options.plainProxy === true ? plainSite : nginxGuardSite)({ ...options, listen: `127.0.0.1:${options.port}` });
  const config = [
    // As root, workers would switch to an unprivileged user that cannot read the temporary directory.
    ...(process.getuid?.() === 0 ? ["user root root;"] : []),
    "daemon off;",
    "worker_processes 1;",
    `pid ${join(dir, "nginx.pid")};`,
    `error_log ${join(dir, "error.log")} warn;`,
    `events { worker_connections ${options.workerConnections ?? 1024}; }`,
    "http {",
    "    access_log off;",
    ...(options.keepaliveRequests === undefined ? [] : [`    keepalive_requests ${options.keepaliveRequests};`]),
    `    client_body_temp_path ${join(dir, "client_body")};`,
    `    proxy_temp_path ${join(dir, "proxy")};`,
    `    fastcgi_temp_path ${join(dir, "fastcgi")};`,
    `    uwsgi_temp_path ${join(dir, "uwsgi")};`,
    `    scgi_temp_path ${join(dir, "scgi")};`,
    ...site.split("\n").map((line) => (line === "" ? "" : `    ${line}`)),
    "}",
    "",
  ]
    .join("\n");
  writeFileSync(join(dir, "nginx.conf"), config);

  const child: ChildProcess = spawn(binary, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  const errorLog = () => {
    try {
      return output + readFileSync(join(dir, "error.log"), "utf8");
    } catch {
      return output;
    }
  };

  // Wait by condition: the port accepts a connection (or nginx exited with its reason).
  const deadline = Date.now() + 20_000;
  while (!(await portAnswers(options.port))) {
    if (!running) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nginx exited before listening:\n${output}\n${config}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not listen on ${options.port}:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }

  return {
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    config,
    errorLog,
    async close() {
      if (running) {
        // SIGQUIT: graceful shutdown of the master and its worker.
        child.kill("SIGQUIT");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
