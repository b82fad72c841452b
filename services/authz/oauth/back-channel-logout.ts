/** A Logout Token on its way to a client's back-channel logout URI. */
export interface LogoutTokenDelivery {
  clientId: string;
  uri: string;
  logoutToken: string;
}

/**
 * The port through which the core hands Logout Tokens to the network
 * (services/authz/back-channel-logout-sender.ts). `deliver` returns at once:
 * delivery, retries and their failures never hold up the user's logout,
 * whatever a client's endpoint does.
 */
export interface BackChannelLogout {
  deliver(delivery: LogoutTokenDelivery): void;
}
