#!/usr/bin/env bash
# Print the etcd CA certificate and key (PEM) for distribution to the other members and
# the control planes. The caller marks stdout secret and logs nothing.
# Parameters: CA_CERT CA_KEY
set -euo pipefail
: "${CA_CERT:?}" "${CA_KEY:?}"

cert_pub=$(openssl x509 -in "$CA_CERT" -noout -pubkey)
key_pub=$(openssl pkey -in "$CA_KEY" -pubout)
if [[ "$cert_pub" != "$key_pub" ]]; then
  echo "$CA_CERT and $CA_KEY do not belong together" >&2
  exit 1
fi
cat "$CA_CERT" "$CA_KEY"
