import type { OAuthContext } from "../oauth/context.js";
import type { User } from "../oauth/model.js";
import { AdminError } from "./admin-error.js";
import type { UserRightsCalls } from "./admin-api.js";

/**
 * The admin API's calls into oauth/user-rights.ts (blockUser, unblockUser,
 * userRightsChanged). Until that module is merged, blocking is refused
 * rather than half done.
 */
export const userRightsCalls: UserRightsCalls = {
  async block() {
    throw new AdminError("failed_precondition", "blocking users needs oauth/user-rights.ts (issue 12, rights), not merged yet");
  },
  async unblock() {
    throw new AdminError("failed_precondition", "unblocking users needs oauth/user-rights.ts (issue 12, rights), not merged yet");
  },
  async rightsChanged() {},
  async isDisabled(_ctx: OAuthContext, user: User) {
    return (user as User & { disabled?: boolean }).disabled === true;
  },
  listSessions: () => notMergedYet(),
  endSession: () => notMergedYet(),
  listGrants: () => notMergedYet(),
  revokeGrant: () => notMergedYet(),
};

function notMergedYet(): never {
  throw new AdminError("failed_precondition", "a user's sessions and grants need oauth/user-rights.ts (issue 12, rights), not merged yet");
}
