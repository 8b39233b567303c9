#!/usr/bin/env bash
# Install the pinned Fluent Bit from its signed yum repository (REPO_ID, already written) on a
# host outside the cluster, and (re)start it when its config or release changes (FINGERPRINT).
# The signing key is fetched from KEY_URL and must be exactly the key KEY_FINGERPRINT names
# (no other key in the file) before rpm imports it and the repository's gpgkey uses it.
# Parameters: VERSION REPO_ID KEY_URL KEY_FINGERPRINT KEY_FILE STATE_DIR UNIT
#             TIMERS (= UNIT, for the delete) FINGERPRINT
set -euo pipefail
: "${VERSION:?}" "${REPO_ID:?}" "${KEY_URL:?}" "${KEY_FINGERPRINT:?}" "${KEY_FILE:?}" "${STATE_DIR:?}" \
  "${UNIT:?}" "${FINGERPRINT:?}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Primary key fingerprints in a key file, one a line (gpg's colon listing: `fpr` after `pub`).
key_fingerprints() {
  mkdir -m 0700 "$work/gnupg"
  GNUPGHOME="$work/gnupg" gpg --batch --quiet --with-colons --show-keys "$1" \
    | awk -F: '$1 == "pub" { primary = 1; next } $1 == "fpr" && primary { print $10; primary = 0 }'
}

curl --fail --silent --show-error --location --retry 5 --retry-delay 3 --output "$work/key.asc" "$KEY_URL"
found=$(key_fingerprints "$work/key.asc")
if [[ "$found" != "$KEY_FINGERPRINT" ]]; then
  echo "fluent-bit: $KEY_URL holds key(s) [${found//$'\n'/ }], not the pinned $KEY_FINGERPRINT; nothing imported" >&2
  exit 1
fi
install -D -m 0644 -o root -g root "$work/key.asc" "$KEY_FILE"
rpm --import "$KEY_FILE"

installed=$(rpm -q --queryformat '%{VERSION}' fluent-bit 2>/dev/null || true)
if [[ "$installed" == "$VERSION" ]]; then
  echo "fluent-bit $VERSION is already installed"
else
  # The repository excludes fluent-bit from plain upgrades; only this pinned install moves it.
  dnf -y -q install --disableexcludes="$REPO_ID" "fluent-bit-${VERSION}"
  echo "installed fluent-bit $VERSION (was ${installed:-absent})"
fi

# The inputs' positions (journal cursor, audit log offset) live here: a restart resumes.
install -d -m 0700 -o root -g root "$STATE_DIR"

systemctl daemon-reload
systemctl enable "$UNIT"
systemctl restart "$UNIT"
echo "fluent-bit running ($FINGERPRINT)"
