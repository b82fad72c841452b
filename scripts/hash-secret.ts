/**
 * Client secrets are machine-generated (256 bits) and stored as SHA-256
 * digests (clients[].secretHashes).
 *   npm run hash-secret              generates a secret; prints it and its hash
 *   echo -n secret | npm run hash-secret -- --stdin   hashes a given secret
 */
import { randomBytes } from "node:crypto";
import { hashSecret } from "../services/authz/oauth/secrets.js";
import { readSecretFromStdin } from "./read-stdin.js";

if (process.argv.includes("--stdin")) {
  const secret = await readSecretFromStdin("secret: ");
  process.stdout.write(`sha256:${hashSecret(secret)}\n`);
} else {
  const secret = randomBytes(32).toString("base64url");
  process.stdout.write(`secret:      ${secret}\nsecretHashes: ["sha256:${hashSecret(secret)}"]\n`);
}
