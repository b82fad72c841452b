import type { BackChannelLogout } from "./back-channel-logout.js";
import type { ClientMetadataDocuments } from "./metadata-documents.js";
import type { Directory } from "./directory.js";
import type { Store } from "./store.js";
import type { Clock } from "./clock.js";
import type { KeyRing } from "./key-ring.js";
import type { ServerPolicy } from "./model.js";
import type { RemoteJwks } from "./remote-jwks.js";
import type { RandomSource } from "./secrets.js";
import type { StepTracer } from "./trace.js";

/** What every operation of the protocol core works with; built once per process (deps.ts). */
export interface OAuthContext {
  /** The tenant's settings; its clients, users and scopes are what the configuration declares (see `directory`). */
  readonly policy: ServerPolicy;
  /** Every client, user and scope of the tenant, the configuration's and those created at run time: look them up here. */
  readonly directory: Directory;
  readonly store: Store;
  readonly keys: KeyRing;
  readonly clock: Clock;
  readonly random: RandomSource;
  /** Waits; slows down repeated failures. */
  readonly sleep: (ms: number) => Promise<void>;
  /** Fetches clients' `jwks_uri` and clusters' key sets; absent: only inline keys verify client assertions. */
  readonly remoteJwks?: RemoteJwks | undefined;
  /** Names the protocol's steps in traces; absent: nothing is traced (the default). */
  readonly trace?: StepTracer | undefined;
  /** Fetches Client ID Metadata Documents (https client ids); absent: such ids are unknown clients. */
  readonly metadataDocuments?: ClientMetadataDocuments | undefined;
  /** Delivers OpenID Connect Back-Channel Logout tokens; absent: none are sent. */
  readonly backChannelLogout?: BackChannelLogout | undefined;
}
