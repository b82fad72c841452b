import type { OAuthContext } from "../oauth/context.js";
import { findUserRights } from "../oauth/current-rights.js";
import type { User } from "../oauth/model.js";
import {
  blockUser,
  endUserSession,
  listUserGrants,
  listUserSessions,
  revokeUserGrant,
  unblockUser,
  userRightsChanged,
} from "../oauth/user-rights.js";
import type { UserRightsCalls } from "./admin-api.js";

/**
 * The admin API's calls into the resource owner's rights (oauth/user-rights.ts,
 * oauth/current-rights.ts, issue 12): the admin API decides who may do what to
 * which user; what blocking, unblocking or a change of groups does to
 * sessions, grants and the gateways' caches is the core's, in one place. A
 * user's sessions and grants are listed from the store's per-subject indexes.
 * A user the configuration disables stays disabled when unblocked (README,
 * "Users' rights").
 */
export const userRightsCalls: UserRightsCalls = {
  async block(ctx, subject) {
    await blockUser(ctx, subject);
  },
  async unblock(ctx, subject) {
    await unblockUser(ctx, subject);
  },
  async rightsChanged(ctx, subject, before, after) {
    await userRightsChanged(ctx, subject, before, after);
  },
  async currentGroups(ctx: OAuthContext, user: User) {
    return (await findUserRights(ctx, user.subject))?.groups ?? user.groups;
  },
  async isDisabled(ctx: OAuthContext, user: User) {
    return (await findUserRights(ctx, user.subject))?.disabled ?? user.disabled;
  },
  listSessions: (ctx, subject) => listUserSessions(ctx, subject),
  endSession: (ctx, subject, sid) => endUserSession(ctx, subject, sid),
  listGrants: (ctx, subject) => listUserGrants(ctx, subject),
  revokeGrant: (ctx, subject, grantId) => revokeUserGrant(ctx, subject, grantId),
};
