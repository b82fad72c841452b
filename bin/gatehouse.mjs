#!/usr/bin/env node
/**
 * gatehouse <command> [args...]: the image's one entry point. It runs the
 * compiled build (dist/, from `npm run build`) in this same process, so
 * signals (SIGTERM: drain, SIGHUP: reload) reach the service directly.
 *
 *   gatehouse authz            the authz service (services/authz/main.ts)
 *   gatehouse gateway          the gateway (gateway/main.ts)
 *   gatehouse all-in-one       both in one process, the gateway calling the service in process (all-in-one/main.ts)
 *   gatehouse admin …          the admin API's command line (cli/admin/main.ts; `gatehouse admin --help`)
 *   gatehouse generate-jwks    a JWK Set with a new signing key (scripts/generate-jwks.ts)
 *   gatehouse hash-secret      a client secret and its sha256: digest (scripts/hash-secret.ts)
 *   gatehouse hash-password    the scrypt hash of a user's password (scripts/hash-password.ts)
 */
const COMMANDS = {
  authz: "../dist/services/authz/main.js",
  gateway: "../dist/gateway/main.js",
  "all-in-one": "../dist/all-in-one/main.js",
  admin: "../dist/cli/admin/main.js",
  "generate-jwks": "../dist/scripts/generate-jwks.js",
  "hash-secret": "../dist/scripts/hash-secret.js",
  "hash-password": "../dist/scripts/hash-password.js",
};

const command = process.argv[2];
if (command === undefined || !Object.hasOwn(COMMANDS, command)) {
  const known = Object.keys(COMMANDS).join(", ");
  process.stderr.write(
    command === undefined || command === "--help" || command === "-h"
      ? `usage: gatehouse <command> [args...]; commands: ${known}\n`
      : `gatehouse: unknown command ${JSON.stringify(command)}; commands: ${known}\n`,
  );
  process.exit(command === "--help" || command === "-h" ? 0 : 64);
}
// The entry point sees its own arguments as if it had been started directly.
process.argv.splice(2, 1);
await import(new URL(COMMANDS[command], import.meta.url).href);
