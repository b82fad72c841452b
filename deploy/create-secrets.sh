#!/usr/bin/env bash
# Creates the files an overlay's secretGenerator reads, in <overlay>/secrets/,
# for those that are missing; an existing file is never replaced.
#
#   bash deploy/create-secrets.sh deploy/overlays/dev
#
#   jwks.json                       signing keys: a JWK Set with one new ES256 key (npm run generate-jwks)
#   service-credential              the gateways' service credential (256 random bits)
#   gateway-client-secret(.hash)    the public gateway's client secret and its sha256: digest (npm run hash-secret)
#   notes-api-client-secret(.hash)  the notes-api sidecar's client secret and its digest
#
# An external Redis' password (overlays/production: secrets/redis-password) is
# your Redis provider's, so it is not made here. Values are written without a
# trailing newline: environment variables carry them byte for byte.
# Needs the checkout's dev dependencies (npm ci), for tsx.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -f "$1/kustomization.yaml" ]; then
  echo "usage: bash deploy/create-secrets.sh <overlay directory, e.g. deploy/overlays/dev>" >&2
  exit 64
fi
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$(cd "$1" && pwd)/secrets"
umask 077
mkdir -p "$dir"

ts() { (cd "$root" && node --import tsx "$@"); }
made=()

if [ ! -e "$dir/jwks.json" ]; then
  ts scripts/generate-jwks.ts --out "$dir/jwks.json" 2>/dev/null
  made+=(jwks.json)
fi

random_secret() { node -e 'process.stdout.write(require("node:crypto").randomBytes(32).toString("base64url"))'; }

if [ ! -e "$dir/service-credential" ]; then
  random_secret > "$dir/service-credential"
  made+=(service-credential)
fi

# A client secret, and the digest the authz service compares it with. The
# digest is recomputed whenever it is missing, so it always matches the secret.
for client in gateway notes-api; do
  secret="$dir/$client-client-secret"
  if [ ! -e "$secret" ]; then
    random_secret > "$secret"
    rm -f "$secret.hash"
    made+=("$client-client-secret")
  fi
  if [ ! -e "$secret.hash" ]; then
    ts scripts/hash-secret.ts --stdin < "$secret" | tr -d '\n' > "$secret.hash"
    made+=("$client-client-secret.hash")
  fi
done

if [ ${#made[@]} -eq 0 ]; then
  echo "create-secrets: $dir already has every file; nothing changed"
else
  echo "create-secrets: made ${made[*]} in $dir"
fi
if grep -q 'secrets/redis-password' "$1/kustomization.yaml" && [ ! -e "$dir/redis-password" ]; then
  echo "create-secrets: still missing: $dir/redis-password (your Redis' password: printf %s \"\$REDIS_PASSWORD\" > $dir/redis-password)" >&2
fi
