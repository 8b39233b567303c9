#!/usr/bin/env bash
# Point Keepalived at the NIC that carries this host's address, check both configs with the
# daemons' own checkers, then start or reload HAProxy and Keepalived.
# Parameters: ADDRESS IFACE_CONF HAPROXY_CFG KEEPALIVED_CONF CHECK_SCRIPT FINGERPRINT
set -euo pipefail
: "${ADDRESS:?}" "${IFACE_CONF:?}" "${HAPROXY_CFG:?}" "${KEEPALIVED_CONF:?}" "${CHECK_SCRIPT:?}" "${FINGERPRINT:?}"
STAMP=/etc/keepalived/.seoul-applied-fingerprint

iface=$(ip -o -4 addr show | awk -v addr="$ADDRESS" '{ split($4, a, "/"); if (a[1] == addr) { print $2; exit } }')
if [[ -z "$iface" ]]; then
  echo "no interface carries $ADDRESS" >&2
  exit 1
fi
# A keepalived definition, not a shell expansion: keepalived substitutes $VIP_INTERFACE.
# shellcheck disable=SC2016
printf '$VIP_INTERFACE=%s\n' "$iface" >"$IFACE_CONF.new"
chmod 0644 "$IFACE_CONF.new"
mv -f "$IFACE_CONF.new" "$IFACE_CONF"

# SELinux: Keepalived runs track scripts confined unless they carry this type; the check
# needs curl to 6443 and systemctl, so label it as the policy intends for such scripts.
if command -v semanage >/dev/null && [[ "$(getenforce 2>/dev/null || echo Disabled)" != "Disabled" ]]; then
  if ! semanage fcontext -l | grep -qF "$CHECK_SCRIPT "; then
    semanage fcontext -a -t keepalived_unconfined_script_exec_t "$CHECK_SCRIPT" ||
      echo "warning: could not label $CHECK_SCRIPT keepalived_unconfined_script_exec_t" >&2
  fi
  restorecon "$CHECK_SCRIPT"
fi

haproxy -c -q -f "$HAPROXY_CFG"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
keepalived --config-test="$log" --use-file="$KEEPALIVED_CONF" || true
if [[ -s "$log" ]]; then
  echo "keepalived rejects $KEEPALIVED_CONF:" >&2
  cat "$log" >&2
  exit 1
fi

systemctl enable haproxy keepalived
if [[ "$(cat "$STAMP" 2>/dev/null || true)" == "$FINGERPRINT" ]]; then
  systemctl start haproxy keepalived
else
  # reload: HAProxy hands its listeners to the new process; Keepalived re-reads on SIGHUP
  systemctl reload-or-restart haproxy
  systemctl reload-or-restart keepalived
  echo "$FINGERPRINT" >"$STAMP"
fi
echo "API VIP frontend on $(hostname -s): VRRP on $iface, haproxy $(systemctl is-active haproxy), keepalived $(systemctl is-active keepalived)"
