#!/usr/bin/env bash
# Install the pinned node_exporter release (sha256-verified) as a systemd service on a host
# outside the cluster, with the textfile collector reading TEXTFILE_DIR; restart it when the
# unit or release changes (FINGERPRINT).
# Parameters: VERSION URL SHA256 BIN TEXTFILE_DIR UNIT TIMERS (= UNIT, for the delete) FINGERPRINT
set -euo pipefail
: "${VERSION:?}" "${URL:?}" "${SHA256:?}" "${BIN:?}" "${TEXTFILE_DIR:?}" "${UNIT:?}" "${FINGERPRINT:?}"

installed_version() {
  "$BIN" --version 2>/dev/null | sed -n 's/^node_exporter, version \([0-9.]*\).*/\1/p'
}

if [[ -x "$BIN" && "$(installed_version)" == "$VERSION" ]]; then
  echo "node_exporter $VERSION is already installed"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  curl --fail --silent --show-error --location --retry 5 --retry-delay 3 --output "$work/ne.tar.gz" "$URL"
  echo "$SHA256  $work/ne.tar.gz" | sha256sum --check --quiet -
  tar -xzf "$work/ne.tar.gz" -C "$work" --strip-components=1
  install -m 0755 -o root -g root "$work/node_exporter" "$BIN"
  if command -v restorecon >/dev/null; then restorecon "$BIN"; fi
  echo "installed node_exporter $VERSION"
fi

getent group node_exporter >/dev/null || groupadd --system node_exporter
id node_exporter >/dev/null 2>&1 || useradd --system --gid node_exporter --no-create-home --shell /sbin/nologin node_exporter
# The certificate-expiry and backup exports write here as root; node_exporter only reads.
install -d -m 0755 -o root -g root "$TEXTFILE_DIR"

systemctl daemon-reload
systemctl enable "$UNIT"
systemctl restart "$UNIT"
echo "node_exporter running ($FINGERPRINT)"
