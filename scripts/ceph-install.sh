#!/usr/bin/env bash
# Install cephadm, ceph-common (the `ceph` CLI), podman and lvm2 at the pinned Ceph release
# from download.ceph.com (repository file written before this step), after checking the
# fingerprint of the Ceph release key that signs the packages. Safe to run twice.
# Parameters: CEPH_VERSION KEY_URL KEY_FINGERPRINT FINGERPRINT (of the repository file)
set -euo pipefail
: "${CEPH_VERSION:?}" "${KEY_URL:?}" "${KEY_FINGERPRINT:?}" "${FINGERPRINT:?}"

key_id=$(tr 'A-F' 'a-f' <<<"${KEY_FINGERPRINT: -8}")
if ! rpm -q "gpg-pubkey-$key_id" >/dev/null 2>&1; then
  key=$(mktemp)
  trap 'rm -f "$key"' EXIT
  curl -fsSL --retry 3 -o "$key" "$KEY_URL"
  got=$(gpg --with-colons --show-keys "$key" | awk -F: '$1 == "fpr" {print $10; exit}')
  if [[ "$got" != "$KEY_FINGERPRINT" ]]; then
    echo "Ceph release key at $KEY_URL has fingerprint $got, expected $KEY_FINGERPRINT" >&2
    exit 1
  fi
  rpm --import "$key"
fi
want=(cephadm ceph-common)
missing=()
for pkg in "${want[@]}"; do
  have=$(rpm -q --qf '%{VERSION}' "$pkg" 2>/dev/null || true)
  [[ "$have" == "$CEPH_VERSION" ]] || missing+=("$pkg-$CEPH_VERSION")
done
for pkg in podman lvm2; do
  rpm -q "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  dnf install -y "${missing[@]}"
fi
cephadm version
