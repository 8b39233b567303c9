#!/usr/bin/env bash
# Create the dedicated etcd CA on the first etcd member, once. An existing CA is never replaced.
# Parameters: CA_CERT CA_KEY CA_DAYS CA_CN
set -euo pipefail
: "${CA_CERT:?}" "${CA_KEY:?}" "${CA_DAYS:?}" "${CA_CN:?}"

if [[ -s "$CA_CERT" && -s "$CA_KEY" ]]; then
  echo "etcd CA exists: $(openssl x509 -in "$CA_CERT" -noout -subject -enddate | paste -sd ' ')"
  exit 0
fi
if [[ -e "$CA_CERT" || -e "$CA_KEY" ]]; then
  echo "only one of $CA_CERT and $CA_KEY exists; refusing to guess (restore the pair from backup)" >&2
  exit 1
fi

umask 077
[[ -d "$(dirname "$CA_CERT")" ]] || install -d -m 0750 "$(dirname "$CA_CERT")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$work/ca.key" 2>/dev/null
openssl req -x509 -new -key "$work/ca.key" -subj "/CN=$CA_CN" -days "$CA_DAYS" -sha256 \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
  -out "$work/ca.crt"
install -m 0600 -o root -g root "$work/ca.key" "$CA_KEY"
install -m 0644 -o root -g root "$work/ca.crt" "$CA_CERT"
echo "created etcd CA: $(openssl x509 -in "$CA_CERT" -noout -subject -enddate | paste -sd ' ')"
