/**
 * The part of node-oidc-provider 9's API that bench:peers uses. The package
 * ships no types (and @types/oidc-provider is not a dependency); these
 * declarations follow its documentation (docs/README.md, "Adapter" and
 * "Provider API") and lib/models/.
 */
declare module "oidc-provider" {
  import type { IncomingMessage, ServerResponse } from "node:http";

  /** A stored model as the provider hands it to an adapter (JSON-serialisable). */
  export type AdapterPayload = Record<string, unknown> & {
    grantId?: string;
    userCode?: string;
    uid?: string;
    consumed?: number;
  };

  /** One instance per model name ("AuthorizationCode", "RefreshToken", "Grant", ...). */
  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void>;
    find(id: string): Promise<AdapterPayload | undefined>;
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
    findByUid(uid: string): Promise<AdapterPayload | undefined>;
    consume(id: string): Promise<void>;
    destroy(id: string): Promise<void>;
    revokeByGrantId(grantId: string): Promise<void>;
  }

  export interface Client {
    readonly clientId: string;
  }

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): (request: IncomingMessage, response: ServerResponse) => void;
    readonly Client: { find(id: string): Promise<Client | undefined> };
    readonly Grant: new (properties: { accountId: string; clientId: string }) => {
      addOIDCScope(scope: string): void;
      save(): Promise<string>;
    };
    readonly AuthorizationCode: new (properties: {
      accountId: string;
      authTime: number;
      client: Client;
      grantId: string;
      codeChallenge: string;
      codeChallengeMethod: "S256";
      redirectUri: string;
      scope: string;
    }) => { save(): Promise<string> };
  }

  export const errors: {
    InvalidGrant: new (detail?: string) => Error;
  };

  export default Provider;
}
