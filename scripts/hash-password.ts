/**
 * Prints the scrypt hash of a password for `users[].passwordHash`.
 *   npm run hash-password            (reads the password from stdin, no echo)
 *   echo -n secret | npm run hash-password
 */
import { hashPassword } from "../services/authz/oauth/password.js";
import { readSecretFromStdin } from "./read-stdin.js";

const password = await readSecretFromStdin("password: ");
if (password === "") {
  process.stderr.write("hash-password: empty password\n");
  process.exit(2);
}
process.stdout.write(`${await hashPassword(password)}\n`);
