#!/usr/bin/env bash
# Wait until every etcd member answers healthy (the cluster has formed and has quorum).
# Parameters: ENDPOINTS CA_CERT CERT KEY BIN_DIR TIMEOUT_SECONDS
set -euo pipefail
: "${ENDPOINTS:?}" "${CA_CERT:?}" "${CERT:?}" "${KEY:?}" "${BIN_DIR:?}" "${TIMEOUT_SECONDS:?}"

deadline=$((SECONDS + TIMEOUT_SECONDS))
until ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$CA_CERT" --cert "$CERT" --key "$KEY" \
  --endpoints "$ENDPOINTS" --dial-timeout=3s --command-timeout=10s endpoint health >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    echo "etcd cluster not healthy after ${TIMEOUT_SECONDS}s:" >&2
    ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$CA_CERT" --cert "$CERT" --key "$KEY" \
      --endpoints "$ENDPOINTS" --dial-timeout=3s endpoint health >&2 || true
    exit 1
  fi
  sleep 3
done
ETCDCTL_API=3 "$BIN_DIR/etcdctl" --cacert "$CA_CERT" --cert "$CERT" --key "$KEY" \
  --endpoints "$ENDPOINTS" endpoint status -w table
