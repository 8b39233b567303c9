#!/usr/bin/env bash
# Export the expiry time of every certificate on this host as Prometheus textfile metrics:
#   seoul_cert_expiry_timestamp_seconds{path="...",subject="..."} <unix time>
# for the node_exporter textfile collector (alerting rules live with the observability stack).
# Installed as /usr/local/sbin/seoul-cert-expiry; run hourly by cert-expiry.timer.
# Parameters: OUTPUT (default /var/lib/node_exporter/textfile/cert_expiry.prom)
set -euo pipefail
OUTPUT="${OUTPUT:-/var/lib/node_exporter/textfile/cert_expiry.prom}"
CERT_DIRS="${CERT_DIRS:-/etc/kubernetes/pki /etc/etcd/pki /var/lib/kubelet/pki}"
KUBECONFIGS="${KUBECONFIGS:-/etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf /etc/kubernetes/kubelet.conf}"

label() { tr -d '"\\\n' <<<"$1"; }

metric() { # <source> <pem file>
  local end subject epoch
  end=$(openssl x509 -in "$2" -noout -enddate 2>/dev/null | cut -d= -f2) || return 0
  [[ -n "$end" ]] || return 0
  subject=$(openssl x509 -in "$2" -noout -subject -nameopt RFC2253 2>/dev/null | sed 's/^subject=//')
  epoch=$(date -d "$end" +%s)
  printf 'seoul_cert_expiry_timestamp_seconds{path="%s",subject="%s"} %s\n' "$(label "$1")" "$(label "$subject")" "$epoch"
}

install -d -m 0755 "$(dirname "$OUTPUT")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{
  echo "# HELP seoul_cert_expiry_timestamp_seconds Unix time at which the certificate stops being valid."
  echo "# TYPE seoul_cert_expiry_timestamp_seconds gauge"
  for dir in $CERT_DIRS; do
    [[ -d "$dir" ]] || continue
    while IFS= read -r -d '' file; do
      metric "$file" "$file"
    # -L: the kubelet's client certificate is the symlink kubelet-client-current.pem; the
    # dated copies it points at over time, and the self-signed kubelet.crt the kubelet
    # remakes at start, are never renewed in place and would alert forever.
    done < <(find -L "$dir" -type f \( -name '*.crt' -o -name '*.pem' \) ! -name '*key*' \
      ! -name 'kubelet-client-2*.pem' ! -name 'kubelet.crt' -print0 | sort -z)
  done
  for conf in $KUBECONFIGS; do
    [[ -f "$conf" ]] || continue
    data=$(sed -n 's/^ *client-certificate-data: *//p' "$conf" | head -n 1)
    [[ -n "$data" ]] || continue
    base64 -d <<<"$data" >"$work/client.pem" 2>/dev/null || continue
    metric "$conf" "$work/client.pem"
  done
  echo "# HELP seoul_cert_expiry_last_run_timestamp_seconds Unix time of the last certificate scan."
  echo "# TYPE seoul_cert_expiry_last_run_timestamp_seconds gauge"
  echo "seoul_cert_expiry_last_run_timestamp_seconds $(date +%s)"
} >"$work/out.prom"
chmod 0644 "$work/out.prom"
mv -f "$work/out.prom" "$OUTPUT.$$"
mv -f "$OUTPUT.$$" "$OUTPUT"
