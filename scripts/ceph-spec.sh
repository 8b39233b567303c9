#!/usr/bin/env bash
# Apply a cephadm service spec (declarative: applying it again changes nothing).
# Parameters: SPEC (path) FINGERPRINT (of the spec, so a change re-runs this step)
set -euo pipefail
: "${SPEC:?}" "${FINGERPRINT:?}"
ceph orch apply -i "$SPEC"
