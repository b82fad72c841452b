import type { OAuthContext } from "../oauth/context.js";
import type { User } from "../oauth/model.js";
import { effectiveRights } from "../oauth/current-rights.js";
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
 * The admin API's calls into oauth/user-rights.ts (issue 12): blocking ends
 * the user's sessions, revokes their grants and tells every gateway; a change
 * of groups is announced so that every gateway drops what it cached of the
 * user; a user's sessions and grants are listed from the store's per-subject
 * indexes. The admin API has found the user already. A user the
 * configuration disables stays disabled when unblocked (README, "Users' rights").
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
  async isDisabled(ctx: OAuthContext, user: User) {
    return effectiveRights(user, await ctx.store.userStates.get(user.subject)).disabled;
  },
  listSessions: (ctx, subject) => listUserSessions(ctx, subject),
  endSession: (ctx, subject, sid) => endUserSession(ctx, subject, sid),
  listGrants: (ctx, subject) => listUserGrants(ctx, subject),
  revokeGrant: (ctx, subject, grantId) => revokeUserGrant(ctx, subject, grantId),
};
