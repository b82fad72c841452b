import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadGatewayConfig, parseGatewayConfig } from "../../gateway/config.js";
import { ConfigError, loadAuthzConfig, parseAuthzConfig, type AuthzConfig, type Environment } from "../../services/authz/config.js";
import type { Client } from "../../services/authz/oauth/model.js";
import { configErrorOf } from "../support/config-error-of.js";
import { hashSecret } from "../../services/authz/oauth/secrets.js";

const ISSUER = "https://as.example";
const WEB_HASH = hashSecret("web-secret");
const NEXT_HASH = hashSecret("web-secret-next");
const PASSWORD_HASH = "scrypt$1024$8$1$h5TaKObEbJo3xXUDW8Figw$8IF-h9pg5RIrVc-jVHLBd-u1orz47DEPExxlF-5YZoY";

type Document = Record<string, unknown>;

/** A configuration document as YAML text, from a JS object (raw text only where the test is about the text). */
function yaml(document: Document): string {
  return stringify(document);
}

function problemsOf(text: string, env: Environment = {}, source?: string, parse: typeof parseAuthzConfig | typeof parseGatewayConfig = parseAuthzConfig): readonly string[] {
  return configErrorOf(() => parse(text, env, source)).problems;
}

/** The path part of a problem: everything before its first ": ". */
function pathOf(problem: string): string {
  return problem.slice(0, problem.indexOf(": "));
}

const SCOPES = [
  { name: "read", description: "Read your things" },
  { name: "write", description: "Change your things" },
];
const publicClient = (overrides: Document = {}): Document => ({
  id: "spa",
  name: "SPA",
  type: "public",
  redirectUris: ["https://spa.example/cb"],
  scopes: ["read"],
  ...overrides,
});
const confidentialClient = (overrides: Document = {}): Document => ({
  id: "web",
  name: "Web",
  type: "confidential",
  secretHashes: [`sha256:${WEB_HASH}`],
  redirectUris: ["https://web.example/cb"],
  scopes: ["read"],
  ...overrides,
});
const withClients = (...clients: Document[]): string => yaml({ issuer: ISSUER, scopes: SCOPES, clients });

describe("parseAuthzConfig: a valid file", () => {
  it("a file with only an issuer takes every default", () => {
    const config = parseAuthzConfig(`issuer: ${ISSUER}\n`, {});
    expect(config).toMatchObject({
      issuer: ISSUER,
      requireHttps: true,
      listen: { host: "127.0.0.1", port: 50051 },
      redis: undefined,
      keyPrefix: "gatehouse:",
      signingKeys: undefined,
      serviceCredential: undefined,
      audience: ISSUER,
      lifetimes: {
        accessToken: 600,
        code: 60,
        refreshToken: 14 * 86_400,
        refreshFamily: 90 * 86_400,
        request: 600,
        session: 8 * 3_600,
        consent: 30 * 86_400,
      },
      attempts: { windowSeconds: 900, maxFailuresPerUser: 5, maxFailuresPerAddress: 50, delayPerFailureMs: 250, maxDelayMs: 2_000 },
      drainTimeoutMs: 10_000,
      logLevel: "info",
    });
    expect(config.scopes.size).toBe(0);
    expect(config.clients.size).toBe(0);
    expect(config.users.size).toBe(0);
  });

  const full = yaml({
    issuer: ISSUER,
    authz: {
      host: "0.0.0.0",
      port: 6000,
      keyPrefix: "gh:",
      audience: "https://api.example",
      serviceCredential: { env: "SERVICE_CREDENTIAL" },
      signingKeys: { source: { env: "SIGNING_JWKS" }, activeKid: "k2" },
    },
    lifetimes: { accessToken: 300 },
    scopes: [...SCOPES, { name: "notes:read", description: "Read notes", routes: [{ path: "/notes" }] }],
    clients: [
      confidentialClient({
        secretHashes: [`sha256:${WEB_HASH}`, { env: "WEB_NEXT_SECRET_HASH" }],
        redirectUris: ["https://web.example/cb", "http://127.0.0.1:8080/cb"],
        scopes: ["read", "write"],
        defaultScopes: ["read"],
        refreshGraceSeconds: 10,
        firstParty: true,
      }),
      publicClient({ redirectUris: ["com.example.app:/cb"], pkce: { allowPlain: true } }),
      { id: "gateway", name: "Gateway", type: "confidential", secretHashes: [`sha256:${NEXT_HASH}`], grantTypes: [], responseTypes: [], introspectAnyToken: true },
    ],
    users: [
      { username: "alice", subject: "user-1", passwordHash: PASSWORD_HASH },
      { username: "bob", passwordHash: PASSWORD_HASH },
    ],
    gateway: { listen: 8080, whatever: ["the gateway validates its own sections"] },
    routes: [{ path: "/api", scopes: ["read"] }],
  });
  const env: Environment = {
    SERVICE_CREDENTIAL: "service-credential-value",
    SIGNING_JWKS: '{"keys":[]}',
    WEB_NEXT_SECRET_HASH: `  sha256:${NEXT_HASH}\n`,
    LOG_LEVEL: "debug",
  };

  it("a full file builds the server policy the protocol core reads", () => {
    const config = parseAuthzConfig(full, env);
    expect(config.listen).toEqual({ host: "0.0.0.0", port: 6000 });
    expect(config.keyPrefix).toBe("gh:");
    expect(config.audience).toBe("https://api.example");
    expect(config.serviceCredential).toBe("service-credential-value");
    expect(config.signingKeys).toEqual({ jwks: '{"keys":[]}', activeKid: "k2", source: "env SIGNING_JWKS" });
    expect(config.lifetimes.accessToken).toBe(300);
    expect(config.lifetimes.code).toBe(60);
    expect(config.logLevel).toBe("debug");
    expect([...config.scopes.keys()]).toEqual(["read", "write", "notes:read"]);
    expect(config.scopes.get("notes:read")).toEqual({ name: "notes:read", description: "Read notes" });
    expect([...config.users.values()]).toEqual([
      { username: "alice", subject: "user-1", passwordHash: PASSWORD_HASH, groups: [], disabled: false },
      { username: "bob", subject: "bob", passwordHash: PASSWORD_HASH, groups: [], disabled: false },
    ]);
  });

  it("RFC 6749 §2: clients are built with their secret digests (prefix stripped, env values trimmed) and defaults", () => {
    const config = parseAuthzConfig(full, env);
    expect([...config.clients.keys()]).toEqual(["web", "spa", "gateway"]);
    const web = config.clients.get("web")!;
    // The sets are read-only subclasses of Set; compare their members.
    expect({ ...web, grantTypes: new Set(web.grantTypes), responseTypes: new Set(web.responseTypes) }).toEqual<Client>({
      id: "web",
      name: "Web",
      type: "confidential",
      secretHashes: [WEB_HASH, NEXT_HASH],
      redirectUris: ["https://web.example/cb", "http://127.0.0.1:8080/cb"],
      scopes: ["read", "write"],
      defaultScopes: ["read"],
      grantTypes: new Set(["authorization_code", "refresh_token"]),
      responseTypes: new Set(["code"]),
      pkce: { required: true, allowPlain: false },
      refreshGraceSeconds: 10,
      firstParty: true,
      introspectAnyToken: false,
    });
    expect(config.clients.get("spa")).toMatchObject({ type: "public", secretHashes: [], pkce: { required: true, allowPlain: true } });
    const gateway = config.clients.get("gateway")!;
    expect([gateway.grantTypes.size, gateway.responseTypes.size, gateway.introspectAnyToken]).toEqual([0, 0, true]);
  });

  it("its maps and sets are read-only too: set, add, delete and clear throw", () => {
    const config = parseAuthzConfig(full, env);
    const web = config.clients.get("web")!;
    const clients = config.clients as Map<string, Client>;
    const grantTypes = web.grantTypes as Set<string>;
    expect(() => clients.set("evil", web)).toThrow(TypeError);
    expect(() => clients.delete("web")).toThrow(TypeError);
    expect(() => clients.clear()).toThrow(TypeError);
    expect(() => grantTypes.add("password")).toThrow(TypeError);
    expect(() => grantTypes.delete("refresh_token")).toThrow(TypeError);
    expect(() => (config.scopes as Map<string, unknown>).set("admin", {})).toThrow(TypeError);
    expect([...config.clients.keys()]).toEqual(["web", "spa", "gateway"]);
    expect(web.grantTypes.has("password" as never)).toBe(false);
  });

  it("schema problems and semantic problems are listed together, without cascades", () => {
    const text = yaml({
      issuer: "http://as.example",
      bogus: 1,
      scopes: SCOPES,
      clients: [publicClient({ pkce: { required: false } }), publicClient({ id: "b", type: "secretive" }), publicClient({ id: "c", scopes: ["nope"] })],
    });
    const problems = problemsOf(text);
    expect(problems).toEqual(
      expect.arrayContaining([
        '(root): Unrecognized key: "bogus"',
        expect.stringMatching(/^clients\[1\]\.type: /),
        expect.stringMatching(/^issuer: must use https/),
        expect.stringMatching(/^clients\[0\]\.pkce\.required: public clients must use PKCE/),
        'clients[2].scopes[0]: unknown scope "nope" (define it under scopes)',
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  it("the result is deeply frozen: assigning to it throws", () => {
    const config = parseAuthzConfig(full, env);
    const web = config.clients.get("web")!;
    const frozen: unknown[] = [
      config,
      config.listen,
      config.lifetimes,
      config.attempts,
      config.signingKeys,
      config.clients,
      config.scopes,
      config.users,
      web,
      web.redirectUris,
      web.secretHashes,
      web.scopes,
      web.pkce,
      config.users.get("alice"),
      config.scopes.get("read"),
    ];
    for (const value of frozen) expect(Object.isFrozen(value)).toBe(true);
    expect(() => {
      (config as { issuer: string }).issuer = "https://evil.example";
    }).toThrow(TypeError);
    expect(() => {
      (config.lifetimes as { accessToken: number }).accessToken = 86_400;
    }).toThrow(TypeError);
    expect(() => {
      (web.redirectUris as string[]).push("https://evil.example/cb");
    }).toThrow(TypeError);
    expect(() => {
      (web.pkce as { required: boolean }).required = false;
    }).toThrow(TypeError);
  });
});

describe("parseAuthzConfig: every problem is reported, each at its path", () => {
  it("a file with several semantic problems reports all of them", () => {
    const text = yaml({
      issuer: "http://as.example",
      scopes: SCOPES,
      clients: [
        confidentialClient({ secretHashes: [{ env: "WEB_SECRET_HASH" }] }),
        publicClient({
          secretHashes: [`sha256:${WEB_HASH}`],
          redirectUris: ["https://spa.example/cb", "http://spa.example/cb", "/relative", "https://spa.example/cb#frag"],
          scopes: ["read", "admin"],
          defaultScopes: ["write"],
          pkce: { required: false },
        }),
      ],
    });
    const problems = problemsOf(text);
    expect(problems.map(pathOf).sort()).toEqual(
      [
        "issuer",
        "clients[0].secretHashes[0]",
        "clients[1].redirectUris[1]",
        "clients[1].redirectUris[2]",
        "clients[1].redirectUris[3]",
        "clients[1].scopes[1]",
        "clients[1].defaultScopes[0]",
        "clients[1].secretHashes",
        "clients[1].pkce.required",
      ].sort(),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^issuer: must use https \(RFC 8414 §2\)/),
        "clients[0].secretHashes[0]: environment variable WEB_SECRET_HASH is not set",
        expect.stringMatching(/^clients\[1\]\.redirectUris\[1\]: must use https.*RFC 8252 §7\.3/),
        expect.stringMatching(/^clients\[1\]\.redirectUris\[2\]: must be an absolute URI/),
        expect.stringMatching(/^clients\[1\]\.redirectUris\[3\]: must not include a fragment/),
        expect.stringMatching(/^clients\[1\]\.scopes\[1\]: unknown scope "admin"/),
        expect.stringMatching(/^clients\[1\]\.defaultScopes\[0\]: "write" is not in this client's scopes/),
        expect.stringMatching(/^clients\[1\]\.secretHashes: a public client has no secret/),
        expect.stringMatching(/^clients\[1\]\.pkce\.required: public clients must use PKCE/),
      ]),
    );
  });

  it("a file with several schema problems reports all of them", () => {
    const text = yaml({
      issuer: ISSUER,
      bogus: 1,
      lifetimes: { code: 601 },
      authz: { redis: { url: "http://not-redis.example" } },
      scopes: [{ name: 'has"quote', description: "x" }],
      clients: [publicClient(), publicClient({ id: "b", type: "secretive", color: "blue", redirectUris: [42], pkce: { required: true, extra: 1 } })],
      users: [{ username: "u", passwordHash: "plaintext" }],
    });
    const problems = problemsOf(text);
    expect(problems.map(pathOf).sort()).toEqual(
      [
        "(root)",
        "lifetimes.code",
        "authz.redis.url",
        "scopes[0].name",
        "clients[1]",
        "clients[1].type",
        "clients[1].redirectUris[0]",
        "clients[1].pkce",
        "users[0].passwordHash",
      ].sort(),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        '(root): Unrecognized key: "bogus"',
        'clients[1]: Unrecognized key: "color"',
        'clients[1].pkce: Unrecognized key: "extra"',
        "authz.redis.url: must be a redis:// or rediss:// URL",
        expect.stringMatching(/^scopes\[0\]\.name: must be a scope-token \(RFC 6749 §3\.3\)/),
        expect.stringMatching(/^users\[0\]\.passwordHash: must be scrypt\$N\$r\$p\$salt\$hash/),
      ]),
    );
  });

  it("the ConfigError message lists every problem", () => {
    const text = yaml({ issuer: "http://as.example", scopes: SCOPES, clients: [publicClient({ pkce: { required: false } })] });
    let caught: unknown;
    try {
      parseAuthzConfig(text, {});
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).message).toMatch(/^invalid configuration:\n {2}- issuer: .*\n {2}- clients\[0\]\.pkce\.required: /);
  });

  it.each<[string, string, RegExp]>([
    ["a YAML syntax error is reported against the file", "issuer: [unclosed\n", /^config: Flow sequence/],
    ["duplicate top-level keys are refused", `issuer: ${ISSUER}\nissuer: https://other.example\n`, /^config: Map keys must be unique/],
    ["duplicate keys inside a client are refused", `issuer: ${ISSUER}\nclients:\n  - id: a\n    name: A\n    id: b\n`, /^config: Map keys must be unique at line 5/],
    ["an empty file lacks the issuer", "", /^issuer: /],
    ["a document that is not a mapping is refused at the root", "- a\n- b\n", /^\(root\): /],
  ])("%s", (_name, text, problem) => {
    const problems = problemsOf(text);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(problem);
  });

  it("a YAML error names the file it came from", () => {
    expect(problemsOf("issuer: [unclosed\n", {}, "/etc/gatehouse/authz.yaml")[0]).toMatch(/^\/etc\/gatehouse\/authz\.yaml: /);
  });

  it.each<[string, Document, string]>([
    ["at the root", { issuer: ISSUER, colour: "blue" }, '(root): Unrecognized key: "colour"'],
    ["in authz", { issuer: ISSUER, authz: { prot: 1 } }, 'authz: Unrecognized key: "prot"'],
    ["in authz.redis", { issuer: ISSUER, authz: { redis: { url: "redis://r", db: 1 } } }, 'authz.redis: Unrecognized key: "db"'],
    ["in lifetimes", { issuer: ISSUER, lifetimes: { accessTokn: 60 } }, 'lifetimes: Unrecognized key: "accessTokn"'],
    ["in attempts", { issuer: ISSUER, attempts: { maxFailures: 3 } }, 'attempts: Unrecognized key: "maxFailures"'],
    ["in a scope", { issuer: ISSUER, scopes: [{ name: "read", description: "d", hidden: true }] }, 'scopes[0]: Unrecognized key: "hidden"'],
    ["in a client", { issuer: ISSUER, scopes: SCOPES, clients: [publicClient({ redirectUri: "x" })] }, 'clients[0]: Unrecognized key: "redirectUri"'],
    ["in a client's pkce", { issuer: ISSUER, scopes: SCOPES, clients: [publicClient({ pkce: { method: "S256" } })] }, 'clients[0].pkce: Unrecognized key: "method"'],
    ["in a user", { issuer: ISSUER, users: [{ username: "u", passwordHash: PASSWORD_HASH, password: "x" }] }, 'users[0]: Unrecognized key: "password"'],
    ["in a secret reference", { issuer: ISSUER, authz: { serviceCredential: { env: "X", value: "y" } } }, 'authz.serviceCredential: Unrecognized key: "value"'],
  ])("an unknown key is refused %s", (_name, document, problem) => {
    expect(problemsOf(yaml(document), { X: "x" })).toEqual([problem]);
  });
});

describe("parseAuthzConfig: secrets come from the environment", () => {
  it.each<[string, Document, Environment, string]>([
    ["a client secret hash", { clients: [confidentialClient({ secretHashes: [{ env: "WEB_HASH" }] })] }, {}, "clients[0].secretHashes[0]: environment variable WEB_HASH is not set"],
    ["a client secret hash set to the empty string", { clients: [confidentialClient({ secretHashes: [{ env: "WEB_HASH" }] })] }, { WEB_HASH: "" }, "clients[0].secretHashes[0]: environment variable WEB_HASH is not set"],
    ["the service credential", { authz: { serviceCredential: { env: "SVC_CRED" } } }, {}, "authz.serviceCredential: environment variable SVC_CRED is not set"],
    ["the signing keys", { authz: { signingKeys: { source: { env: "JWKS" } } } }, {}, "authz.signingKeys.source: environment variable JWKS is not set"],
    ["the Redis password (sentinel)", { authz: { redis: { sentinels: [{ host: "s", port: 26379 }], name: "m", password: { env: "REDIS_PW" } } } }, {}, "authz.redis.password: environment variable REDIS_PW is not set"],
    ["the Sentinel password", { authz: { redis: { sentinels: [{ host: "s", port: 26379 }], name: "m", sentinelPassword: { env: "SENTINEL_PW" } } } }, {}, "authz.redis.sentinelPassword: environment variable SENTINEL_PW is not set"],
    ["the Redis password (cluster)", { authz: { redis: { cluster: [{ host: "c", port: 6379 }], password: { env: "REDIS_PW" } } } }, {}, "authz.redis.password: environment variable REDIS_PW is not set"],
  ])("a missing variable for %s is a problem naming it", (_name, document, env, problem) => {
    expect(problemsOf(yaml({ issuer: ISSUER, scopes: SCOPES, ...document }), env)).toEqual([problem]);
  });

  it("a referenced secret hash that is not sha256:<43 base64url> is a problem at its path", () => {
    const text = withClients(confidentialClient({ secretHashes: [{ env: "WEB_HASH" }] }));
    expect(problemsOf(text, { WEB_HASH: WEB_HASH })).toEqual([
      "clients[0].secretHashes[0]: the referenced value must be sha256:<43 base64url characters>",
    ]);
  });

  it("a secret file that cannot be read is a problem at its path", () => {
    const problems = problemsOf(yaml({ issuer: ISSUER, authz: { serviceCredential: { file: "/nonexistent/gatehouse/credential" } } }));
    expect(problems).toEqual(["authz.serviceCredential: cannot read /nonexistent/gatehouse/credential (ENOENT)"]);
  });

  it("a literal secret hash of the wrong form is a schema problem at its path", () => {
    expect(problemsOf(withClients(confidentialClient({ secretHashes: ["sha256:short"] })))).toEqual([
      expect.stringMatching(/^clients\[0\]\.secretHashes\[0\]: /),
    ]);
  });
});

describe("parseAuthzConfig: client rules", () => {
  it.each<[string, Document, string]>([
    ["RFC 6749 §2.1: a public client with a secret hash", publicClient({ secretHashes: [`sha256:${WEB_HASH}`] }), "clients[0].secretHashes: a public client has no secret (RFC 6749 §2.1)"],
    ["RFC 6749 §2.1: a public client with a secret reference", publicClient({ secretHashes: [{ env: "SPA_HASH" }] }), "clients[0].secretHashes: a public client has no secret (RFC 6749 §2.1)"],
    ["RFC 9700 §2.1.1: a public client with pkce.required false", publicClient({ pkce: { required: false } }), "clients[0].pkce.required: public clients must use PKCE (RFC 9700 §2.1.1)"],
    ["RFC 7662 §2.1: a public client that would introspect", publicClient({ introspectAnyToken: true }), "clients[0].introspectAnyToken: a public client cannot authenticate to introspect"],
    ["RFC 6749 §2.3.1: a confidential client without a secret hash", confidentialClient({ secretHashes: [] }), "clients[0].secretHashes: a confidential client needs at least one secret hash"],
    ["RFC 6749 §6: refresh_token without authorization_code", confidentialClient({ grantTypes: ["refresh_token"], responseTypes: [] }), "clients[0].grantTypes: refresh_token needs authorization_code, the only grant that issues refresh tokens"],
    ["RFC 6749 §4.1: response type code without the authorization_code grant", confidentialClient({ grantTypes: [] }), "clients[0].responseTypes: response type code needs the authorization_code grant type"],
    ["RFC 6749 §3.1.2.2: a client of the authorization endpoint without redirect URIs", confidentialClient({ redirectUris: [] }), "clients[0].redirectUris: a client that uses the authorization endpoint needs at least one redirect URI"],
    ["RFC 6749 §3.3: a client scope that is not defined", confidentialClient({ scopes: ["read", "admin"] }), 'clients[0].scopes[1]: unknown scope "admin" (define it under scopes)'],
    ["RFC 6749 §3.3: a default scope the client may not request", confidentialClient({ defaultScopes: ["write"] }), 'clients[0].defaultScopes[0]: "write" is not in this client\'s scopes'],
  ])("%s is a problem", (_name, client, problem) => {
    // The secret reference of the second row is resolvable, so that only the rule under test fails.
    expect(problemsOf(withClients(client), { SPA_HASH: `sha256:${WEB_HASH}` })).toEqual([problem]);
  });

  it("RFC 6749 §2.2: a duplicate client id is a problem at the second client", () => {
    expect(problemsOf(withClients(publicClient(), publicClient({ name: "Again" })))).toEqual(['clients[1].id: duplicate client id "spa"']);
  });

  it("a duplicate scope and a duplicate user are problems at the second of each", () => {
    const text = yaml({
      issuer: ISSUER,
      scopes: [...SCOPES, { name: "read", description: "again" }],
      users: [
        { username: "alice", passwordHash: PASSWORD_HASH },
        { username: "alice", passwordHash: PASSWORD_HASH },
      ],
    });
    expect(problemsOf(text)).toEqual(['scopes[2].name: duplicate scope "read"', 'users[1].username: duplicate user "alice"']);
  });

  it("issue 12: users' groups and disabled, scopes' groups are read; group names must be slugs, listed once", () => {
    const config = parseAuthzConfig(
      yaml({
        issuer: ISSUER,
        scopes: [...SCOPES, { name: "admin", description: "Administer", groups: ["admins", "ops"] }],
        users: [
          { username: "alice", passwordHash: PASSWORD_HASH, groups: ["admins"] },
          { username: "bob", passwordHash: PASSWORD_HASH, disabled: true },
        ],
      }),
      {},
    );
    expect(config.scopes.get("admin")).toEqual({ name: "admin", description: "Administer", groups: ["admins", "ops"] });
    expect(config.scopes.get("read")).toEqual({ name: "read", description: expect.any(String) });
    expect(config.users.get("alice")).toMatchObject({ groups: ["admins"], disabled: false });
    expect(config.users.get("bob")).toMatchObject({ groups: [], disabled: true });
    const problems = problemsOf(
      yaml({
        issuer: ISSUER,
        scopes: [...SCOPES, { name: "admin", description: "Administer", groups: [] }, { name: "audit", description: "Audit", groups: ["Auditors"] }],
        users: [{ username: "alice", passwordHash: PASSWORD_HASH, groups: ["ops", "ops"] }],
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^scopes\[\d\]\.groups: list at least one group/),
      expect.stringMatching(/^scopes\[\d\]\.groups\[0\]: must be a group slug/),
      expect.stringMatching(/^users\[0\]\.groups: a group is listed twice/),
    ]);
  });

  it("a refresh token may not outlive its family", () => {
    const text = yaml({ issuer: ISSUER, lifetimes: { refreshToken: 100, refreshFamily: 99 } });
    expect(problemsOf(text)).toEqual(["lifetimes.refreshToken: must not exceed lifetimes.refreshFamily"]);
  });

  it("RFC 6749 §4.1.2: an authorization code lifetime over 10 minutes is refused", () => {
    expect(problemsOf(yaml({ issuer: ISSUER, lifetimes: { code: 601 } })).map(pathOf)).toEqual(["lifetimes.code"]);
  });

  it("overload: the limits default from measured capacity, and a Redis timeout must be shorter than a call's budget (the innermost deadline gives up first)", () => {
    expect(parseAuthzConfig(`issuer: ${ISSUER}\n`, {}).overload).toEqual({
      maxConcurrent: 64,
      maxQueue: 128,
      queueTimeoutMs: 250,
      deadlineMarginMs: 200,
      defaultBudgetMs: 1_800,
      redisCommandTimeoutMs: 500,
    });
    expect(parseGatewayConfig(yaml({ issuer: ISSUER, gateway: { authz: { clientId: "g", clientSecret: { env: "S" } } } }), { S: "s" }).overload).toEqual({
      maxConcurrent: 128,
      maxQueue: 256,
      queueTimeoutMs: 250,
    });
    expect(problemsOf(yaml({ issuer: ISSUER, authz: { overload: { redisCommandTimeoutMs: 2_000 } } })).map(pathOf)).toEqual(["authz.overload.redisCommandTimeoutMs"]);
    expect(problemsOf(yaml({ issuer: ISSUER, authz: { overload: { maxConcurrent: 0 } } })).map(pathOf)).toEqual(["authz.overload.maxConcurrent"]);
  });
});

describe("parseAuthzConfig: issuer and requireHttps", () => {
  it.each<[string, Document]>([
    ["RFC 8414 §2: an https issuer", { issuer: ISSUER }],
    ["RFC 8414 §2: an https issuer with a path", { issuer: "https://as.example/tenant-a" }],
    ["an http issuer with requireHttps false (development)", { issuer: "http://localhost:8080", requireHttps: false }],
    ["an http non-loopback redirect URI with requireHttps false", { issuer: "http://localhost:8080", requireHttps: false, scopes: SCOPES, clients: [publicClient({ redirectUris: ["http://spa.example/cb"] })] }],
    ["RFC 8252 §7.3: a loopback http redirect URI with requireHttps true", { issuer: ISSUER, scopes: SCOPES, clients: [publicClient({ redirectUris: ["http://127.0.0.1:8080/cb", "http://[::1]/cb"] })] }],
    ["RFC 8252 §7.1: a private-use scheme redirect URI with requireHttps true", { issuer: ISSUER, scopes: SCOPES, clients: [publicClient({ redirectUris: ["com.example.app:/cb"] })] }],
  ])("%s is accepted", (_name, document) => {
    expect(() => parseAuthzConfig(yaml(document), {})).not.toThrow();
  });

  it.each<[string, Document, string]>([
    ["RFC 8414 §2: an http issuer with requireHttps true", { issuer: "http://as.example", requireHttps: true }, "issuer: must use https (RFC 8414 §2); set requireHttps: false for local development"],
    ["RFC 8414 §2: an http issuer when requireHttps is left at its default", { issuer: "http://as.example" }, "issuer: must use https (RFC 8414 §2); set requireHttps: false for local development"],
    ["RFC 8414 §2: an issuer with a query", { issuer: "https://as.example?tenant=a" }, "issuer: must have no query or fragment (RFC 8414 §2)"],
    ["RFC 8414 §2: an issuer with an empty query", { issuer: "https://as.example?" }, "issuer: must have no query or fragment (RFC 8414 §2)"],
    ["RFC 8414 §2: an issuer with a fragment", { issuer: "https://as.example#a" }, "issuer: must have no query or fragment (RFC 8414 §2)"],
    ["RFC 8414 §2: an issuer that is not a URL", { issuer: "as.example" }, "issuer: must be an absolute URL"],
    ["RFC 8414 §2: a non-http issuer even with requireHttps false", { issuer: "ftp://as.example", requireHttps: false }, "issuer: must use https (RFC 8414 §2); set requireHttps: false for local development"],
  ])("%s is a problem", (_name, document, problem) => {
    expect(problemsOf(yaml(document))).toEqual([problem]);
  });
});

describe("parseAuthzConfig: the environment", () => {
  const fileRedis = { issuer: ISSUER, authz: { redis: { url: "redis://from-file:6379" } } };

  it.each<[string, Document, Environment, AuthzConfig["redis"]]>([
    ["REDIS_URL selects a Redis when the file names none", { issuer: ISSUER }, { REDIS_URL: "redis://from-env:6379/2" }, { kind: "url", url: "redis://from-env:6379/2" }],
    ["REDIS_URL overrides the file's Redis", fileRedis, { REDIS_URL: "rediss://from-env:6380" }, { kind: "url", url: "rediss://from-env:6380" }],
    ["an empty REDIS_URL leaves the file's Redis", fileRedis, { REDIS_URL: "" }, { kind: "url", url: "redis://from-file:6379" }],
    ["no REDIS_URL and no file Redis: the memory store", { issuer: ISSUER }, {}, undefined],
    [
      "a Sentinel Redis with its passwords from the environment",
      { issuer: ISSUER, authz: { redis: { sentinels: [{ host: "s1", port: 26379 }], name: "mymaster", password: { env: "RP" }, sentinelPassword: { env: "SP" } } } },
      { RP: "redis-pw", SP: "sentinel-pw" },
      { kind: "sentinel", name: "mymaster", sentinels: [{ host: "s1", port: 26379 }], password: "redis-pw", sentinelPassword: "sentinel-pw", replicaAckTimeoutMs: 500 },
    ],
    [
      "a Redis Cluster without a password",
      { issuer: ISSUER, authz: { redis: { cluster: [{ host: "c1", port: 7000 }, { host: "c2", port: 7001 }] } } },
      {},
      { kind: "cluster", nodes: [{ host: "c1", port: 7000 }, { host: "c2", port: 7001 }], password: undefined, replicaAckTimeoutMs: 500 },
    ],
    [
      "replicated writes are waited for 250 ms when configured, on a URL too",
      { issuer: ISSUER, authz: { redis: { url: "redis://r:6379", replicaAckTimeoutMs: 250 } } },
      {},
      { kind: "url", url: "redis://r:6379", replicaAckTimeoutMs: 250 },
    ],
    [
      "waiting for replicas can be turned off for a cluster",
      { issuer: ISSUER, authz: { redis: { cluster: [{ host: "c1", port: 7000 }], replicaAckTimeoutMs: false } } },
      {},
      { kind: "cluster", nodes: [{ host: "c1", port: 7000 }], password: undefined, replicaAckTimeoutMs: undefined },
    ],
  ])("%s", (_name, document, env, redis) => {
    expect(parseAuthzConfig(yaml(document), env).redis).toEqual(redis);
  });

  it.each<[string, Environment, number]>([
    ["GATEHOUSE_AUTHZ_PORT overrides the file's port", { GATEHOUSE_AUTHZ_PORT: "6001" }, 6001],
    ["without GATEHOUSE_AUTHZ_PORT the file's port is used", {}, 6000],
    ["GATEHOUSE_AUTHZ_PORT 0 asks for a free port", { GATEHOUSE_AUTHZ_PORT: "0" }, 0],
  ])("%s", (_name, env, port) => {
    expect(parseAuthzConfig(yaml({ issuer: ISSUER, authz: { port: 6000 } }), env).listen.port).toBe(port);
  });

  it.each<[string, Environment, string]>([
    ["a GATEHOUSE_AUTHZ_PORT that is not a number", { GATEHOUSE_AUTHZ_PORT: "http" }, 'GATEHOUSE_AUTHZ_PORT: must be a port number, got "http"'],
    ["a GATEHOUSE_AUTHZ_PORT above 65535", { GATEHOUSE_AUTHZ_PORT: "65536" }, 'GATEHOUSE_AUTHZ_PORT: must be a port number, got "65536"'],
    ["a fractional GATEHOUSE_AUTHZ_PORT", { GATEHOUSE_AUTHZ_PORT: "80.5" }, 'GATEHOUSE_AUTHZ_PORT: must be a port number, got "80.5"'],
    ["an unknown LOG_LEVEL", { LOG_LEVEL: "verbose" }, 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"'],
  ])("%s is a problem", (_name, env, problem) => {
    expect(problemsOf(`issuer: ${ISSUER}\n`, env)).toEqual([problem]);
  });

  it("environment problems and file problems are reported together", () => {
    const text = yaml({ issuer: "http://as.example", authz: { serviceCredential: { env: "SVC" } } });
    expect(problemsOf(text, { LOG_LEVEL: "loud", GATEHOUSE_AUTHZ_PORT: "x" }).map(pathOf).sort()).toEqual(
      ["issuer", "authz.serviceCredential", "LOG_LEVEL", "GATEHOUSE_AUTHZ_PORT"].sort(),
    );
  });

  it("the environment is read from the argument only, never from process.env", () => {
    const saved = process.env.LOG_LEVEL;
    process.env.LOG_LEVEL = "not-a-level";
    try {
      expect(parseAuthzConfig(`issuer: ${ISSUER}\n`, {}).logLevel).toBe("info");
    } finally {
      if (saved === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = saved;
    }
  });
});

describe("parseGatewayConfig: every problem is reported at once, like the authz service", () => {
  const GATEWAY_ENV: Environment = { GW_SECRET: "gateway-secret" };
  const gatewayFile = (overrides: Document = {}, gateway: Document = {}): Document => ({
    issuer: ISSUER,
    gateway: { authz: { clientId: "gateway", clientSecret: { env: "GW_SECRET" } }, guard: { defaultUpstream: "http://127.0.0.1:9000" }, ...gateway },
    ...overrides,
  });
  const gatewayProblems = (document: Document, env: Environment = GATEWAY_ENV) => problemsOf(yaml(document), env, undefined, parseGatewayConfig);

  it("a valid file is accepted", () => {
    const config = parseGatewayConfig(yaml(gatewayFile({ routes: [{ path: "/api/**", scopes: ["read"] }] })), GATEWAY_ENV);
    expect(config.authz.clientSecret).toBe("gateway-secret");
    expect(config.routes.map((r) => [r.name, r.upstream])).toEqual([["routes[0]", "http://127.0.0.1:9000"]]);
  });

  it("schema problems and the later checks' problems (issuer, secrets, routes, environment) are listed together", () => {
    const document = gatewayFile(
      {
        issuer: "http://gw.example?tenant=a",
        routes: [{ path: "/api/**", scopes: ["read"] }, { path: "relative", scopes: [] }],
        scopes: [{ name: "read", routes: ["FETCH /x"] }],
      },
      { port: "eighty", authz: { clientId: "gateway", clientSecret: { env: "UNSET_SECRET" } } },
    );
    const problems = gatewayProblems(document, { LOG_LEVEL: "loud", GATEHOUSE_AUTHZ_ENDPOINTS: "ftp://authz" });
    expect(problems.map(pathOf).sort()).toEqual(
      [
        "gateway.port",
        "routes[1].path",
        "routes[1].scopes",
        "issuer",
        "issuer",
        "scopes[0].routes[0]",
        "gateway.authz.clientSecret",
        "GATEHOUSE_AUTHZ_ENDPOINTS",
        "LOG_LEVEL",
      ].sort(),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        "issuer: must have no query or fragment (RFC 8414 §2)",
        "issuer: must use https (RFC 8414 §2); set requireHttps: false for local development",
        "gateway.authz.clientSecret: environment variable UNSET_SECRET is not set",
        "scopes[0].routes[0]: unknown method FETCH",
      ]),
    );
  });

  it("an invalid authz section does not hide the other problems, nor add its secrets' own", () => {
    const problems = gatewayProblems(gatewayFile({ issuer: "http://gw.example" }, { authz: { clientId: "", clientSecret: { env: "UNSET" } } }), { GATEHOUSE_GATEWAY_PORT: "x" });
    expect(problems.map(pathOf).sort()).toEqual(["gateway.authz.clientId", "issuer", "GATEHOUSE_GATEWAY_PORT"].sort());
  });

  it("without cascades: an invalid guard section does not also make each route report a missing upstream", () => {
    const document = gatewayFile({ routes: [{ path: "/a/**", scopes: ["read"] }], scopes: [{ name: "read", routes: ["GET /b"] }] }, { guard: { cacheTtlSeconds: 9_999 } });
    expect(gatewayProblems(document).map(pathOf)).toEqual(["gateway.guard.cacheTtlSeconds"]);
  });

  it("a route the schema refuses leaves the others at their positions", () => {
    const document = gatewayFile({ routes: [{ path: "nope", scopes: ["read"] }, { path: "/b", scopes: ["read"] }] }, { guard: {} });
    expect(gatewayProblems(document)).toEqual(["routes[0].path: must be an absolute path", "routes[1].upstream: required (or set gateway.guard.defaultUpstream)"]);
  });

  it("a file without a gateway section says so, and nothing else", () => {
    expect(gatewayProblems({ issuer: ISSUER })).toEqual(["gateway: Invalid input: expected object, received undefined"]);
  });

  it("RFC 8414 §2: the gateway's issuer check is the authz service's (no query, no fragment, https unless development)", () => {
    expect(gatewayProblems(gatewayFile({ issuer: "https://gw.example#x" }))).toEqual(["issuer: must have no query or fragment (RFC 8414 §2)"]);
    expect(gatewayProblems(gatewayFile({ issuer: "ftp://gw.example", requireHttps: false }))).toEqual([
      "issuer: must use https (RFC 8414 §2); set requireHttps: false for local development",
    ]);
    expect(() => parseGatewayConfig(yaml(gatewayFile({ issuer: "http://localhost:8080", requireHttps: false })), GATEWAY_ENV)).not.toThrow();
  });

  it("the error is the shared ConfigError, and its message names the gateway", () => {
    const error = configErrorOf(() => parseGatewayConfig(yaml(gatewayFile({ issuer: "http://gw.example" })), GATEWAY_ENV));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe("invalid gateway configuration:\n  - issuer: must use https (RFC 8414 §2); set requireHttps: false for local development");
  });

  it("the result is deeply frozen: assigning to it throws", () => {
    const config = parseGatewayConfig(yaml(gatewayFile({ routes: [{ path: "/api/**", scopes: ["read"] }] })), GATEWAY_ENV);
    for (const value of [config, config.authz, config.authz.endpoints, config.guard, config.guard.identityHeaders, config.routes, config.routes[0], config.paths]) {
      expect(Object.isFrozen(value)).toBe(true);
    }
    expect(() => (config.routes as unknown[]).push({})).toThrow(TypeError);
    expect(() => {
      (config.guard as { realm: string }).realm = "evil";
    }).toThrow(TypeError);
  });
});

describe("loading from the file GATEHOUSE_CONFIG names", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-config-"));
  const secretFile = join(dir, "gateway-secret");
  writeFileSync(secretFile, "gateway-secret\n");
  const file = join(dir, "config.yaml");
  writeFileSync(
    file,
    yaml({
      issuer: ISSUER,
      scopes: SCOPES,
      clients: [publicClient()],
      gateway: { authz: { clientId: "gateway", clientSecret: { file: secretFile } } },
    }),
  );

  it("both processes read the one file, list it and the secret files it names as their sources, and freeze the result", () => {
    const authz = loadAuthzConfig({ GATEHOUSE_CONFIG: file });
    const gateway = loadGatewayConfig({ GATEHOUSE_CONFIG: file });
    expect([authz.sources, gateway.sources]).toEqual([[file], [file, secretFile]]);
    expect(gateway.authz.clientSecret).toBe("gateway-secret");
    expect([Object.isFrozen(authz), Object.isFrozen(authz.sources), Object.isFrozen(gateway), Object.isFrozen(gateway.sources)]).toEqual([true, true, true, true]);
  });

  it("a Map in the loaded configuration refuses mutation", () => {
    const authz = loadAuthzConfig({ GATEHOUSE_CONFIG: file });
    expect(() => (authz.clients as Map<string, Client>).set("evil", authz.clients.get("spa")!)).toThrow(TypeError);
    expect(() => (authz.clients as Map<string, Client>).delete("spa")).toThrow(TypeError);
    expect(() => (authz.clients.get("spa")!.grantTypes as Set<string>).add("password")).toThrow(TypeError);
    expect(authz.clients.size).toBe(1);
  });

  it("a file that cannot be read is one problem for each process, in its own words", () => {
    const missing = join(dir, "missing.yaml");
    const authz = configErrorOf(() => loadAuthzConfig({ GATEHOUSE_CONFIG: missing }));
    const gateway = configErrorOf(() => loadGatewayConfig({ GATEHOUSE_CONFIG: missing }));
    expect([authz.problems, gateway.problems]).toEqual([[`${missing}: cannot read the configuration file (ENOENT)`], [`${missing}: cannot read the configuration file (ENOENT)`]]);
    expect([authz.message.split("\n")[0], gateway.message.split("\n")[0]]).toEqual(["invalid configuration:", "invalid gateway configuration:"]);
  });
});

describe("parseAuthzConfig: named credentials (issue 12)", () => {
  const ADMIN = "a".repeat(32);
  it("the service credential is one secret reference, or a list of named ones; every one is accepted, the first is the gateway's", () => {
    const single = parseAuthzConfig(yaml({ issuer: ISSUER, authz: { serviceCredential: { env: "SVC" } } }), { SVC: "one" });
    expect(single.serviceCredentials).toEqual([{ name: "gateway", secret: "one" }]);
    expect(single.serviceCredential).toBe("one");
    const list = parseAuthzConfig(
      yaml({ issuer: ISSUER, authz: { serviceCredential: [{ name: "gateway-next", secret: { env: "NEXT" } }, { name: "gateway", secret: { env: "SVC" } }] } }),
      { SVC: "one", NEXT: "two" },
    );
    expect(list.serviceCredentials).toEqual([
      { name: "gateway-next", secret: "two" },
      { name: "gateway", secret: "one" },
    ]);
    expect(list.serviceCredential).toBe("two");
  });
  it("the admin API is off without credentials, on with a list of named ones", () => {
    expect(parseAuthzConfig(`issuer: ${ISSUER}\n`, {}).admin).toEqual({ credentials: [] });
    const config = parseAuthzConfig(yaml({ issuer: ISSUER, authz: { admin: { credentials: [{ name: "ops", secret: { env: "ADMIN" } }] } } }), { ADMIN });
    expect(config.admin.credentials).toEqual([{ name: "ops", secret: ADMIN }]);
  });
  it.each<[string, Document, Environment, string[]]>([
    ["a duplicate name", { admin: { credentials: [{ name: "ops", secret: { env: "A" } }, { name: "ops", secret: { env: "B" } }] } }, { A: ADMIN, B: `${ADMIN}b` }, ['authz.admin.credentials[1].name: duplicate credential name "ops"']],
    ["one secret under two names", { admin: { credentials: [{ name: "ops", secret: { env: "A" } }, { name: "ci", secret: { env: "A" } }] } }, { A: ADMIN }, ["authz.admin.credentials[1].secret: the same secret as another credential; give each its own"]],
    ["a short admin secret", { admin: { credentials: [{ name: "ops", secret: { env: "A" } }] } }, { A: "short" }, ["authz.admin.credentials[0].secret: must be at least 32 characters (make one with openssl rand -base64 32)"]],
    ["an unset variable", { admin: { credentials: [{ name: "ops", secret: { env: "A" } }] } }, {}, ["authz.admin.credentials[0].secret: environment variable A is not set"]],
    ["a bad name", { admin: { credentials: [{ name: "o p s", secret: { env: "A" } }] } }, { A: ADMIN }, ["authz.admin.credentials[0].name: must be 1-64 of A-Z a-z 0-9 . _ -"]],
    ["an empty service credential list", { serviceCredential: [] }, {}, [expect.stringMatching(/^authz\.serviceCredential: /) as unknown as string]],
    ["a service credential in the list with an unset variable", { serviceCredential: [{ name: "gw", secret: { env: "S" } }] }, {}, ["authz.serviceCredential[0].secret: environment variable S is not set"]],
  ])("%s is a problem at its path", (_name, authz, env, problems) => {
    expect(problemsOf(yaml({ issuer: ISSUER, authz }), env)).toEqual(problems);
  });
});
