#!/usr/bin/env bash
# Print cephadm's SSH public key, written by bootstrap (a public key: not a secret).
# Parameters: PUBKEY
set -euo pipefail
: "${PUBKEY:?}"
cat "$PUBKEY"
