#!/usr/bin/env bash
# Copy the etcd CA certificate and kube-apiserver's etcd client certificate into the Secret
# SECRET in NAMESPACE, which Prometheus mounts to scrape the external etcd members over TLS.
# Runs on the init control plane (daily, after the monthly renewals); the key never leaves
# the cluster. Parameters: NAMESPACE SECRET KUBECONFIG CA_CERT CLIENT_CERT CLIENT_KEY
set -euo pipefail
: "${NAMESPACE:?}" "${SECRET:?}" "${KUBECONFIG:?}" "${CA_CERT:?}" "${CLIENT_CERT:?}" "${CLIENT_KEY:?}"
export KUBECONFIG

kubectl create secret generic "$SECRET" --namespace "$NAMESPACE" \
  --from-file=etcd-ca="$CA_CERT" --from-file=etcd-client="$CLIENT_CERT" \
  --from-file=etcd-client-key="$CLIENT_KEY" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
echo "secret $NAMESPACE/$SECRET holds $(openssl x509 -in "$CLIENT_CERT" -noout -enddate)"
