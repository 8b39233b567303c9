#!/usr/bin/env bash
# Install the pinned etcd release (sha256-verified), the etcd system user and its directories.
# Parameters: ETCD_VERSION ETCD_URL ETCD_SHA256 BIN_DIR DATA_DIR SNAPSHOT_DIR PKI_DIR
set -euo pipefail
: "${ETCD_VERSION:?}" "${ETCD_URL:?}" "${ETCD_SHA256:?}" "${BIN_DIR:?}" "${DATA_DIR:?}" "${SNAPSHOT_DIR:?}" "${PKI_DIR:?}"

installed_version() {
  "$BIN_DIR/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p'
}

if [[ -x "$BIN_DIR/etcd" && "$(installed_version)" == "$ETCD_VERSION" ]]; then
  echo "etcd $ETCD_VERSION is already installed"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  curl --fail --silent --show-error --location --retry 5 --retry-delay 3 \
    --output "$work/etcd.tar.gz" "$ETCD_URL"
  echo "$ETCD_SHA256  $work/etcd.tar.gz" | sha256sum --check --quiet -
  tar -xzf "$work/etcd.tar.gz" -C "$work" --strip-components=1
  for binary in etcd etcdctl etcdutl; do
    install -m 0755 -o root -g root "$work/$binary" "$BIN_DIR/$binary"
  done
  echo "installed etcd $ETCD_VERSION (the running member keeps the old binary until its rolling restart)"
fi

getent group etcd >/dev/null || groupadd --system etcd
id etcd >/dev/null 2>&1 || useradd --system --gid etcd --home-dir "$DATA_DIR" --no-create-home --shell /sbin/nologin etcd

install -d -m 0700 -o etcd -g etcd "$DATA_DIR"
install -d -m 0700 -o etcd -g etcd "$SNAPSHOT_DIR"
install -d -m 0750 -o root -g etcd "$PKI_DIR"
if command -v restorecon >/dev/null; then
  restorecon -R "$DATA_DIR" "$SNAPSHOT_DIR" "$BIN_DIR/etcd" "$BIN_DIR/etcdctl" "$BIN_DIR/etcdutl"
fi
if ! mountpoint -q "$DATA_DIR"; then
  echo "warning: $DATA_DIR is not a mount point; etcd expects the NVMe RAID there" >&2
fi
