#!/usr/bin/env bash
# Issue, or re-issue when it nears expiry, a certificate signed by the local etcd CA:
#   MODE=member  an etcd member's server+peer certificate (SANs: name, IP, localhost)
#   MODE=client  kube-apiserver's etcd client certificate
# Safe to run any time: a valid certificate is left alone. Also installed as
# /usr/local/sbin/seoul-etcd-certs for the monthly renewal timer.
# Parameters: MODE NAME IP CA_CERT CA_KEY CERT KEY OWNER DAYS RENEW_DAYS
set -euo pipefail
: "${MODE:?}" "${NAME:?}" "${IP:?}" "${CA_CERT:?}" "${CA_KEY:?}" "${CERT:?}" "${KEY:?}" "${OWNER:?}" "${DAYS:?}" "${RENEW_DAYS:?}"

case "$MODE" in
  member)
    usage="serverAuth,clientAuth"
    sans="DNS:$NAME,DNS:localhost,IP:$IP,IP:127.0.0.1"
    ;;
  client)
    usage="clientAuth"
    sans=""
    ;;
  *)
    echo "MODE must be member or client, not $MODE" >&2
    exit 2
    ;;
esac

for f in "$CA_CERT" "$CA_KEY"; do
  [[ -s "$f" ]] || { echo "missing $f: the etcd CA must be in place first" >&2; exit 1; }
done

current() {
  [[ -s "$CERT" && -s "$KEY" ]] || return 1
  openssl verify -CAfile "$CA_CERT" "$CERT" >/dev/null 2>&1 || return 1
  openssl x509 -in "$CERT" -noout -checkend $((RENEW_DAYS * 86400)) >/dev/null || return 1
  [[ "$(openssl x509 -in "$CERT" -noout -pubkey)" == "$(openssl pkey -in "$KEY" -pubout)" ]] || return 1
  if [[ -n "$sans" ]]; then
    local have
    have=$(openssl x509 -in "$CERT" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr -d ' \n')
    [[ "$have" == "${sans//IP:/IPAddress:}" ]] || return 1
  fi
}

if current; then
  echo "$CERT is valid: $(openssl x509 -in "$CERT" -noout -enddate)"
  exit 0
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "basicConstraints=critical,CA:FALSE"
  echo "keyUsage=critical,digitalSignature,keyEncipherment"
  echo "extendedKeyUsage=$usage"
  echo "subjectKeyIdentifier=hash"
  echo "authorityKeyIdentifier=keyid"
  if [[ -n "$sans" ]]; then echo "subjectAltName=$sans"; fi
} >"$work/ext.cnf"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
openssl req -new -key "$work/key.pem" -subj "/CN=$NAME" -out "$work/req.csr"
openssl x509 -req -in "$work/req.csr" -CA "$CA_CERT" -CAkey "$CA_KEY" -CAcreateserial \
  -CAserial "$work/ca.srl" -days "$DAYS" -sha256 -extfile "$work/ext.cnf" -out "$work/cert.pem" 2>/dev/null
openssl verify -CAfile "$CA_CERT" "$work/cert.pem" >/dev/null

# Create the directory if needed; never change an existing one (its group may be etcd).
[[ -d "$(dirname "$CERT")" ]] || install -d -m 0750 "$(dirname "$CERT")"
# Key first, then certificate: a reader never sees a new certificate with the old key
# for longer than the gap between two renames.
install -m 0600 -o "$OWNER" -g root "$work/key.pem" "$KEY.new"
install -m 0644 -o root -g root "$work/cert.pem" "$CERT.new"
mv -f "$KEY.new" "$KEY"
mv -f "$CERT.new" "$CERT"
echo "issued $CERT ($MODE, CN=$NAME): $(openssl x509 -in "$CERT" -noout -enddate)"
