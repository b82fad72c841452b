import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js";

/** The MCP client application's redirect URI: a loopback web server of its own (RFC 8252 §7.3), which receives the code. */
export interface RedirectReceiver {
  readonly url: string;
  /** Every code that reached it, in order. */
  readonly codes: readonly string[];
  close(): Promise<void>;
}

export async function startRedirectReceiver(): Promise<RedirectReceiver> {
  const codes: string[] = [];
  const server = createServer((request, response) => {
    const code = new URL(request.url ?? "/", "http://127.0.0.1").searchParams.get("code");
    if (code !== null) codes.push(code);
    response.writeHead(200, { "content-type": "text/plain" }).end(code === null ? "no code" : "Signed in. You can close this window.");
  });
  // Port 0: the system picks a free port as it binds (a port probed first may be taken before the bind).
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/callback`, codes, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export interface McpClientProviderOptions {
  /** Where the authorization server sends the browser back (a loopback callback server of the test). */
  redirectUrl: string;
  /** The client_name the SDK registers (RFC 7591 §2) and the consent page shows. */
  clientName: string;
  /** The user agent's part: open the authorization URL and sign in. */
  openBrowser: (url: URL) => Promise<void>;
  /** Client information the application already has (a pre-registered client); absent: the SDK registers. */
  preRegistered?: OAuthClientInformationMixed | undefined;
  /** SEP-991: an https URL the SDK uses as client_id where the server supports Client ID Metadata Documents. */
  clientMetadataUrl?: string | undefined;
}

/**
 * What an MCP client application keeps for the official SDK: it stores and
 * returns what it is given and sends the user's browser to the authorization
 * URL, with no OAuth logic of its own, so that every OAuth step the tests see
 * is the SDK's.
 */
export class McpClientProvider implements OAuthClientProvider {
  #client: OAuthClientInformationMixed | undefined;
  #tokens: OAuthTokens | undefined;
  #verifier = "";
  readonly authorizationUrls: URL[] = [];
  clientMetadataUrl: string | undefined;

  constructor(private readonly options: McpClientProviderOptions) {
    this.#client = options.preRegistered;
    this.clientMetadataUrl = options.clientMetadataUrl;
  }

  get redirectUrl(): string {
    return this.options.redirectUrl;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.options.clientName,
      redirect_uris: [this.options.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.#client;
  }
  saveClientInformation(information: OAuthClientInformationMixed) {
    this.#client = information;
  }
  tokens() {
    return this.#tokens;
  }
  saveTokens(tokens: OAuthTokens) {
    this.#tokens = tokens;
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
    await this.options.openBrowser(url);
  }
  saveCodeVerifier(verifier: string) {
    this.#verifier = verifier;
  }
  codeVerifier() {
    return this.#verifier;
  }
  invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery") {
    if (scope === "all" || scope === "tokens") this.#tokens = undefined;
    if (scope === "all" || scope === "client") this.#client = undefined;
  }
}
