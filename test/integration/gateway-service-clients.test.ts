import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { hashSecret } from "../../services/authz/oauth/secrets.js";
import { startJwksServer, type JwksServer } from "../support/jwks-server.js";
import { waitFor } from "../support/wait-for.js";
import { startGuardStack, type GuardStack } from "./guard-fixtures.js";
import { SECRETS } from "../support/authz.js";

/**
 * Services calling services through the real gateway and authz service on
 * Redis, with a standards client (oauth4webapi) where one exists: client
 * credentials with a secret and with private_key_jwt (inline keys and a
 * jwks_uri on a real https server), token exchange across web → orders →
 * billing, and Kubernetes service account tokens as client assertions. The
 * tokens are then used at guarded routes.
 */
const TE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const CLUSTER = "https://kubernetes.default.svc.test";
const SERVICE_SECRET = "service-client-secret-0123456789abcdefghijklmnopq";
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let s: GuardStack;
let as: oauth.AuthorizationServer;
let jwksServer: JwksServer;
let reporterKey: { privateKey: CryptoKey; publicKey: CryptoKey; kid: string };
let rotatorKeys: Array<{ privateKey: CryptoKey; publicJwk: JWK }>;
let clusterKey: CryptoKey;
let otherClusterKey: CryptoKey;

async function keyPair(alg: "ES256" | "RS256", kid: string) {
  const pair = await generateKeyPair(alg, { extractable: true });
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid, alg } };
}

beforeAll(async () => {
  jwksServer = await startJwksServer();
  const reporter = await keyPair("ES256", "reporter-1");
  reporterKey = { privateKey: reporter.privateKey, publicKey: reporter.publicKey, kid: "reporter-1" };
  rotatorKeys = await Promise.all([keyPair("ES256", "rotator-1"), keyPair("ES256", "rotator-2")]);
  jwksServer.keys = [rotatorKeys[0]!.publicJwk];
  const cluster = await keyPair("RS256", "cluster-1");
  clusterKey = cluster.privateKey;
  otherClusterKey = (await keyPair("RS256", "cluster-1")).privateKey;

  s = await startGuardStack({
    redisUrl: inject("redisUrl"),
    patch: (file, upstream) => {
      const hash = `sha256:${hashSecret(SERVICE_SECRET)}`;
      file.authz = {
        ...(file.authz as Record<string, unknown>),
        // Development: the test's https server on loopback, with its own certificate.
        fetch: { allowPrivateHosts: ["localhost"], trustedCa: { file: jwksServer.certificateFile }, refetchCooldownSeconds: 0 },
      };
      file.serviceAccountIssuers = [{ issuer: CLUSTER, jwks: { keys: [cluster.publicJwk] } }];
      const clients = file.clients as Array<Record<string, unknown>>;
      const web = clients.find((c) => c.id === "web")!;
      web.grantTypes = ["authorization_code", "refresh_token", TE];
      web.service = { tokenExchange: { audiences: ["https://orders.test"], scopes: ["read"] } };
      const service = (id: string, extra: Record<string, unknown>) => ({
        id,
        name: id,
        type: "confidential",
        responseTypes: [],
        grantTypes: ["client_credentials"],
        scopes: ["read"],
        ...extra,
      });
      clients.push(
        service("inventory", { secretHashes: [hash], service: { defaultAudience: "https://orders.test" } }),
        service("reporter", { service: { jwks: { keys: [reporter.publicJwk] }, defaultAudience: "https://orders.test" } }),
        service("rotator", { service: { jwksUri: jwksServer.url, defaultAudience: "https://orders.test" } }),
        // A jwks_uri at a loopback IP literal, not on the development allow-list: never fetched (SSRF).
        service("intruder", { service: { jwksUri: jwksServer.url.replace("localhost", "127.0.0.1") } }),
        service("worker", { service: { serviceAccount: { issuer: CLUSTER, subject: "system:serviceaccount:shop:worker" }, defaultAudience: "https://orders.test" } }),
        service("orders", {
          secretHashes: [hash],
          grantTypes: [TE],
          service: { tokenExchange: { audiences: ["https://billing.test"], scopes: ["read"], subjectAudiences: ["https://orders.test"] } },
        }),
      );
      file.routes = [
        { name: "orders", path: "/orders/**", scopes: ["read"], upstream, audience: "https://orders.test" },
        { name: "billing", path: "/billing/**", scopes: ["read"], upstream, audience: "https://billing.test" },
      ];
    },
  });
  const issuer = new URL(s.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
});
afterAll(async () => {
  await s?.close();
  await jwksServer?.close();
});

const call = (path: string, token: string) => fetch(`${s.gateway.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

/** A token request as a plain form post: for assertions no client library builds (replays, service account tokens). */
async function tokenRequest(form: Record<string, string>) {
  const response = await fetch(as.token_endpoint!, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function assertionFor(clientId: string, key: CryptoKey, kid: string, claims: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: clientId, sub: clientId, aud: s.issuer, jti: crypto.randomUUID(), iat: now, exp: now + 60, ...claims })
    .setProtectedHeader({ alg: "ES256", kid })
    .sign(key);
}

function serviceAccountToken(key: CryptoKey, issuer: string, subject = "system:serviceaccount:shop:worker") {
  const now = Math.floor(Date.now() / 1000);
  // The shape of a projected token (TokenRequest API): audience as configured on the projected volume.
  return new SignJWT({
    iss: issuer,
    sub: subject,
    aud: [s.issuer],
    iat: now,
    nbf: now,
    exp: now + 3_600,
    "kubernetes.io": { namespace: "shop", serviceaccount: { name: "worker", uid: crypto.randomUUID() }, pod: { name: "worker-0", uid: crypto.randomUUID() } },
  })
    .setProtectedHeader({ alg: "RS256", kid: "cluster-1" })
    .sign(key);
}

describe("services calling services, through the gateway", () => {
  it("RFC 8414 §2: metadata advertises client_credentials, token exchange, private_key_jwt and its asymmetric algorithms at every endpoint", () => {
    expect(as.grant_types_supported).toEqual(expect.arrayContaining(["client_credentials", TE]));
    for (const endpoint of ["token_endpoint", "introspection_endpoint", "revocation_endpoint"] as const) {
      expect(as[`${endpoint}_auth_methods_supported`]).toContain("private_key_jwt");
      const algorithms = as[`${endpoint}_auth_signing_alg_values_supported`] as string[];
      expect(algorithms).toContain("ES256");
      expect(algorithms.some((alg) => alg === "none" || alg.startsWith("HS"))).toBe(false);
    }
  });

  it("RFC 6749 §4.4: a confidential client gets a client-credentials token with oauth4webapi (client_secret_basic) and calls a guarded route", async () => {
    const client: oauth.Client = { client_id: "inventory" };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(SERVICE_SECRET), { scope: "read" }, insecure);
    const tokens = await oauth.processClientCredentialsResponse(as, client, response);
    expect(tokens.refresh_token).toBeUndefined();
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: "inventory", client_id: "inventory", aud: "https://orders.test" });
    const answer = await call("/orders/stock", tokens.access_token);
    expect(answer.status).toBe(200);
    expect(s.upstream.last()!.headers["x-gatehouse-subject"]).toBe("inventory");
    // RFC 9068 §4: the billing route is another audience.
    expect((await call("/billing/x", tokens.access_token)).status).toBe(401);
  });

  it("RFC 7523 §2.2: the same with private_key_jwt from a key pair the test made (oauth4webapi PrivateKeyJwt)", async () => {
    const client: oauth.Client = { client_id: "reporter" };
    const auth = oauth.PrivateKeyJwt({ key: reporterKey.privateKey, kid: reporterKey.kid });
    const tokens = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: "read" }, insecure));
    expect((await call("/orders/report", tokens.access_token)).status).toBe(200);
    expect(s.upstream.last()!.headers["x-gatehouse-subject"]).toBe("reporter");
  });

  it("RFC 7523 §3: a replayed assertion is refused (invalid_client); an assertion whose aud is the token endpoint is accepted", async () => {
    const assertion = await assertionFor("reporter", reporterKey.privateKey, reporterKey.kid);
    const form = { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion };
    expect((await tokenRequest(form)).status).toBe(200);
    const replay = await tokenRequest(form);
    expect(replay.status).toBe(400);
    expect(replay.body).toMatchObject({ error: "invalid_client", error_description: expect.stringContaining("replay") });
    const toEndpoint = await assertionFor("reporter", reporterKey.privateKey, reporterKey.kid, { aud: as.token_endpoint });
    expect((await tokenRequest({ ...form, client_assertion: toEndpoint })).status).toBe(200);
  });

  it("private_key_jwt at introspection and revocation (RFC 7662 §2.1, RFC 7009 §2.1): the client introspects and revokes its own token", async () => {
    const client: oauth.Client = { client_id: "reporter" };
    const auth = oauth.PrivateKeyJwt({ key: reporterKey.privateKey, kid: reporterKey.kid });
    const tokens = await oauth.processClientCredentialsResponse(as, client, await oauth.clientCredentialsGrantRequest(as, client, auth, { scope: "read" }, insecure));
    const introspected = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, tokens.access_token, insecure));
    expect(introspected).toMatchObject({ active: true, sub: "reporter", client_id: "reporter" });
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, tokens.access_token, insecure));
    await waitFor(async () => (await call("/orders/report", tokens.access_token)).status === 401, { budgetMs: 1_000, what: "the guard to refuse the revoked token" });
  });

  it("jwks_uri: a key set served over https is used, and a rotated key is picked up on its unknown kid", async () => {
    const client: oauth.Client = { client_id: "rotator" };
    const request = (key: { privateKey: CryptoKey; publicJwk: JWK }) =>
      oauth.clientCredentialsGrantRequest(as, client, oauth.PrivateKeyJwt({ key: key.privateKey, kid: key.publicJwk.kid }), { scope: "read" }, insecure);
    await oauth.processClientCredentialsResponse(as, client, await request(rotatorKeys[0]!));
    const fetches = jwksServer.fetches;
    // The client rotates: the new key is published and the old one withdrawn.
    jwksServer.keys = [rotatorKeys[1]!.publicJwk];
    const tokens = await oauth.processClientCredentialsResponse(as, client, await request(rotatorKeys[1]!));
    expect(jwksServer.fetches).toBe(fetches + 1);
    expect((await call("/orders/x", tokens.access_token)).status).toBe(200);
  });

  it("SSRF: a client whose jwks_uri points at a loopback address is refused with invalid_client, and nothing is fetched", async () => {
    const fetches = jwksServer.fetches;
    const answer = await tokenRequest({
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
      client_assertion: await assertionFor("intruder", rotatorKeys[0]!.privateKey, "rotator-1"),
    });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ error: "invalid_client", error_description: expect.stringContaining("private, loopback or link-local") });
    expect(jwksServer.fetches).toBe(fetches);
  });

  it("RFC 8693: token exchange web → orders → billing nests act; revoking the user's grant refuses the exchanged token at the guard", async () => {
    const user = await s.tokens("read");
    const web: oauth.Client = { client_id: "web" };
    const forOrders = await oauth.processGenericTokenEndpointResponse(
      as,
      web,
      await oauth.genericTokenEndpointRequest(
        as,
        web,
        oauth.ClientSecretBasic(SECRETS.web),
        TE,
        { subject_token: user.accessToken, subject_token_type: ACCESS_TOKEN_TYPE, audience: "https://orders.test" },
        insecure,
      ),
    );
    expect(forOrders).toMatchObject({ issued_token_type: ACCESS_TOKEN_TYPE, scope: "read" });
    expect(decodeJwt(forOrders.access_token)).toMatchObject({ sub: "user-alice", aud: "https://orders.test", act: { sub: "web" } });
    expect((await call("/orders/cart", forOrders.access_token)).status).toBe(200);

    const orders: oauth.Client = { client_id: "orders" };
    const forBilling = await oauth.processGenericTokenEndpointResponse(
      as,
      orders,
      await oauth.genericTokenEndpointRequest(
        as,
        orders,
        oauth.ClientSecretPost(SERVICE_SECRET),
        TE,
        { subject_token: forOrders.access_token, subject_token_type: ACCESS_TOKEN_TYPE, resource: "https://billing.test" },
        insecure,
      ),
    );
    expect(decodeJwt(forBilling.access_token)).toMatchObject({ sub: "user-alice", aud: "https://billing.test", client_id: "orders", act: { sub: "orders", act: { sub: "web" } } });
    expect((await call("/billing/invoice", forBilling.access_token)).status).toBe(200);
    expect(s.upstream.last()!.headers["x-gatehouse-subject"]).toBe("user-alice");
    // RFC 8693 §4.1: introspection reports the delegation chain too.
    const resourceServer: oauth.Client = { client_id: "resource-server" };
    const introspected = await oauth.processIntrospectionResponse(
      as,
      resourceServer,
      await oauth.introspectionRequest(as, resourceServer, oauth.ClientSecretBasic(SECRETS.resourceServer), forBilling.access_token, insecure),
    );
    expect(introspected).toMatchObject({ active: true, sub: "user-alice", client_id: "orders", aud: "https://billing.test", act: { sub: "orders", act: { sub: "web" } } });

    // The user's grant ends (RFC 7009: the web client revokes its refresh token): the exchanged token dies with it.
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, web, oauth.ClientSecretBasic(SECRETS.web), user.refreshToken, insecure));
    await waitFor(async () => (await call("/billing/invoice", forBilling.access_token)).status === 401, {
      budgetMs: 1_000,
      what: "the guard to refuse the exchanged token of a revoked grant",
    });
  });

  it("RFC 8693 §2.2.2: bad exchanges answer the RFC's error, never a server error", async () => {
    const user = await s.tokens("read");
    const base = { grant_type: TE, client_id: "orders", client_secret: SERVICE_SECRET, subject_token_type: ACCESS_TOKEN_TYPE };
    const cases: Array<[Record<string, string>, string]> = [
      [{ subject_token: user.refreshToken, audience: "https://billing.test" }, "invalid_request"],
      [{ subject_token: user.accessToken, audience: "https://billing.test", requested_token_type: "urn:ietf:params:oauth:token-type:id_token" }, "invalid_request"],
      [{ subject_token: user.accessToken, audience: "https://elsewhere.test" }, "invalid_target"],
      [{ subject_token: "not-a-token", audience: "https://billing.test" }, "invalid_request"],
    ];
    for (const [form, error] of cases) {
      const answer = await tokenRequest({ ...base, ...form });
      expect(answer.status, JSON.stringify(form)).toBe(400);
      expect(answer.body.error).toBe(error);
    }
  });

  it("RFC 8707 §2: client credentials and token exchange take one resource; a second is invalid_target, never silently dropped", async () => {
    const body = new URLSearchParams({ grant_type: "client_credentials", client_id: "inventory", client_secret: SERVICE_SECRET, scope: "read" });
    body.append("resource", "https://orders.test");
    body.append("resource", "https://billing.test");
    const response = await fetch(as.token_endpoint!, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe("invalid_target");
  });

  it("Kubernetes: a projected service account token from the configured cluster is a client assertion; one from another issuer or key is refused", async () => {
    const form = (assertion: string) => ({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion, scope: "read" });
    const accepted = await tokenRequest(form(await serviceAccountToken(clusterKey, CLUSTER)));
    expect(accepted.status).toBe(200);
    expect(decodeJwt(accepted.body.access_token as string)).toMatchObject({ sub: "worker", client_id: "worker" });
    expect((await call("/orders/jobs", accepted.body.access_token as string)).status).toBe(200);

    for (const [token, why] of [
      [await serviceAccountToken(otherClusterKey, "https://other-cluster.test"), "keys"],
      [await serviceAccountToken(otherClusterKey, CLUSTER), "signature"],
      [await serviceAccountToken(clusterKey, CLUSTER, "system:serviceaccount:shop:intruder"), "service account"],
    ] as const) {
      const refused = await tokenRequest(form(token));
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: "invalid_client", error_description: expect.stringContaining(why) });
    }
  });
});
