import { z } from "zod";

/**
 * Where a secret comes from: an environment variable (`{ env: NAME }`) or a
 * file (`{ file: /path }`, a mounted Kubernetes Secret), never the YAML itself
 * (../../shared/DESIGN.md, Configuration). Resolved by createSecretResolver.
 */
export const secretReference = z.union([z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })]);

export type SecretReference = z.infer<typeof secretReference>;
