import { z } from "zod";
import type { Client, ServerPolicy, StandardClaims } from "./oauth/model.js";
import { checkRegisteredRedirectUri } from "./oauth/redirect-uri.js";
import { sectorIdentifierOf } from "./oauth/subject-identifier.js";
import { secretReference, type SecretReference } from "../../startup/secret-reference.js";

/**
 * The OpenID Connect parts of the authz configuration, kept out of config.ts
 * so that file only wires them in: the standard claims of users, the
 * per-client registration values, and `authz.openid`.
 */

/** Core §5.1, each claim with its type. */
export const standardClaimsSchema: z.ZodType<StandardClaims> = z.strictObject({
  name: z.string().optional(),
  given_name: z.string().optional(),
  family_name: z.string().optional(),
  middle_name: z.string().optional(),
  nickname: z.string().optional(),
  preferred_username: z.string().optional(),
  profile: z.url().optional(),
  picture: z.url().optional(),
  website: z.url().optional(),
  email: z.email().optional(),
  email_verified: z.boolean().optional(),
  gender: z.string().optional(),
  birthdate: z.string().regex(/^(\d{4}|\d{4}-\d{2}-\d{2}|0000-\d{2}-\d{2})$/, "must be YYYY-MM-DD or YYYY (OpenID Connect Core §5.1)").optional(),
  zoneinfo: z.string().optional(),
  locale: z.string().optional(),
  phone_number: z.string().optional(),
  phone_number_verified: z.boolean().optional(),
  address: z
    .strictObject({
      formatted: z.string().optional(),
      street_address: z.string().optional(),
      locality: z.string().optional(),
      region: z.string().optional(),
      postal_code: z.string().optional(),
      country: z.string().optional(),
    })
    .optional(),
  updated_at: z.number().int().nonnegative().optional(),
});

/** Signing algorithms a client may register for its ID Tokens (never none); the key ring must hold a key of it. */
const ID_TOKEN_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"] as const;

/** The client fields of config.ts's client schema. */
export const openIdClientFields = {
  idTokenSignedResponseAlg: z.enum(ID_TOKEN_ALGORITHMS).optional(),
  subjectType: z.enum(["public", "pairwise"]).optional(),
  sectorIdentifier: z.string().regex(/^[A-Za-z0-9.-]+(:\d+)?$/, "must be a host name").optional(),
  sectorIdentifierUri: z.string().optional(),
  // RP-Initiated Logout 1.0 §3 and Back-Channel Logout 1.0 §2.2.
  postLogoutRedirectUris: z.array(z.string()).default([]),
  backchannelLogoutUri: z.string().optional(),
  revokeOnLogout: z.boolean().default(false),
};

/** `authz.openid`. */
export const openIdSectionSchema = z.strictObject({
  /** The `acr` of ID Tokens. */
  acr: z.string().min(1).optional(),
  /** The secret of pairwise subject identifiers (≥ 32 characters); needed once a client is pairwise. */
  pairwiseSalt: secretReference.optional(),
});

type ClientFields = z.infer<z.ZodObject<typeof openIdClientFields>> & { redirectUris: string[] };

/** The OpenID Connect part of a client, with its problems. */
export function buildOpenIdClient(client: ClientFields, at: string, problems: string[], hasPairwiseSalt: boolean, requireHttps: boolean): Partial<Client> {
  const built: Partial<Client> = {};
  client.postLogoutRedirectUris.forEach((uri, j) => {
    const problem = checkRegisteredRedirectUri(uri, requireHttps);
    if (problem !== undefined) problems.push(`${at}.postLogoutRedirectUris[${j}]: ${problem}`);
  });
  if (client.postLogoutRedirectUris.length > 0) built.postLogoutRedirectUris = client.postLogoutRedirectUris;
  if (client.backchannelLogoutUri !== undefined) {
    const problem = checkBackChannelLogoutUri(client.backchannelLogoutUri, requireHttps);
    if (problem !== undefined) problems.push(`${at}.backchannelLogoutUri: ${problem}`);
    else built.backchannelLogoutUri = client.backchannelLogoutUri;
  }
  if (client.revokeOnLogout) built.revokeOnLogout = true;
  if (client.idTokenSignedResponseAlg !== undefined) built.idTokenSignedResponseAlg = client.idTokenSignedResponseAlg;
  if (client.subjectType === "pairwise") {
    built.subjectType = "pairwise";
    if (!hasPairwiseSalt) problems.push(`${at}.subjectType: pairwise needs authz.openid.pairwiseSalt`);
    if (client.sectorIdentifierUri !== undefined) {
      // Core §8.1: the sector is the host of the sector_identifier_uri; its document is checked at load (sector-identifiers.ts).
      let url: URL | undefined;
      try {
        url = new URL(client.sectorIdentifierUri);
      } catch {
        problems.push(`${at}.sectorIdentifierUri: must be an absolute URI`);
      }
      // Fetched by the one outbound fetcher, which fetches https only (development: authz.fetch.allowPrivateHosts, trustedCa).
      if (url !== undefined && url.protocol !== "https:") problems.push(`${at}.sectorIdentifierUri: must use https`);
      if (client.sectorIdentifier !== undefined) problems.push(`${at}.sectorIdentifier: name either sectorIdentifier or sectorIdentifierUri`);
      if (url !== undefined) {
        built.sectorIdentifier = url.host;
        built.sectorIdentifierUri = client.sectorIdentifierUri;
      }
      return built;
    }
    const sector = sectorIdentifierOf(client.redirectUris, client.sectorIdentifier);
    if ("problem" in sector) problems.push(`${at}.sectorIdentifier: ${sector.problem}`);
    else built.sectorIdentifier = sector.sector;
  } else if (client.sectorIdentifier !== undefined || client.sectorIdentifierUri !== undefined) {
    problems.push(`${at}.${client.sectorIdentifier !== undefined ? "sectorIdentifier" : "sectorIdentifierUri"}: only for subjectType pairwise`);
  }
  return built;
}

/**
 * Back-Channel Logout 1.0 §2.2: an absolute URI without a fragment; https
 * unless requireHttps is off (development). The server posts to it on its own
 * initiative, so it is the operator's configuration alone that names it.
 */
function checkBackChannelLogoutUri(uri: string, requireHttps: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "must be an absolute URI";
  }
  if (url.hash !== "" || uri.includes("#")) return "must not have a fragment (Back-Channel Logout 1.0 §2.2)";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && !requireHttps)) return "must use https";
  return undefined;
}

/** `authz.openid` as policy. */
export function buildOpenIdPolicy(
  section: z.infer<typeof openIdSectionSchema> | undefined,
  resolve: (ref: SecretReference, path: string) => string | undefined,
): Pick<ServerPolicy, "acr" | "pairwiseSalt"> {
  const policy: Pick<ServerPolicy, "acr" | "pairwiseSalt"> = {};
  if (section?.acr !== undefined) policy.acr = section.acr;
  if (section?.pairwiseSalt !== undefined) {
    const salt = resolve(section.pairwiseSalt, "authz.openid.pairwiseSalt");
    if (salt !== undefined) policy.pairwiseSalt = salt;
  }
  return policy;
}
