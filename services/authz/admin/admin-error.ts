/**
 * The admin API's failures, in the words of Google's AIP-193 / gRPC status
 * codes: the admin API is not OAuth, so its errors are not OAuthErrors. The
 * RPC layer (rpc/admin-service.ts) is the one place that turns them into
 * ConnectErrors (InvalidArgument with a google.rpc.BadRequest detail).
 */
export type AdminErrorKind = "invalid_argument" | "not_found" | "already_exists" | "failed_precondition" | "aborted";

/** One bad field: its path in the request (AIP-161: "client.redirect_uris[1]") and what is wrong with it. */
export interface FieldViolation {
  field: string;
  description: string;
}

export class AdminError extends Error {
  constructor(
    readonly kind: AdminErrorKind,
    message: string,
    /** invalid_argument: every bad field, one entry each. */
    readonly violations: readonly FieldViolation[] = [],
  ) {
    super(message);
    this.name = "AdminError";
  }
}

/** Throws invalid_argument listing every violation, when there are any. */
export function refuseViolations(violations: readonly FieldViolation[]): void {
  if (violations.length === 0) return;
  const summary = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
  throw new AdminError("invalid_argument", summary, violations);
}

/** FailedPrecondition for an entry of the configuration file: read-only here (issue 12). */
export function managedByConfiguration(resource: string): AdminError {
  return new AdminError("failed_precondition", `${resource} is managed by configuration: it is declared in the configuration file, so change it there`);
}

export function notFound(resource: string): AdminError {
  return new AdminError("not_found", `${resource} does not exist`);
}
