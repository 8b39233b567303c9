#!/usr/bin/env bash
# Converge firewalld to: default zone DEFAULT_ZONE accepting only TCP_PORTS, UDP_PORTS
# and PROTOCOLS from anywhere, METRICS_PORTS (TCP) only from METRICS_SOURCES (rich rules),
# plus TRUSTED_SOURCES in the trusted zone. Everything else is dropped.
# The SSH port is part of TCP_PORTS and is added before the zone becomes default.
# Env: DEFAULT_ZONE, TCP_PORTS and UDP_PORTS (space separated, ranges as a-b), PROTOCOLS
# (names or numbers), TRUSTED_SOURCES, METRICS_PORTS, METRICS_SOURCES (addresses or CIDRs).
# Every list is converged whole (what is there and not listed is removed): the permanent
# config changes only take effect at the reload below, all at once.
set -euo pipefail
zone="${DEFAULT_ZONE:?DEFAULT_ZONE is required}"
systemctl enable --now firewalld

fw() { firewall-cmd --permanent -q "$@"; }

for service in $(firewall-cmd --permanent --zone="$zone" --list-services); do
  fw --zone="$zone" --remove-service="$service"
done
for port in $(firewall-cmd --permanent --zone="$zone" --list-ports); do
  fw --zone="$zone" --remove-port="$port"
done
for port in ${TCP_PORTS:-}; do
  fw --zone="$zone" --add-port="${port}/tcp"
done
for port in ${UDP_PORTS:-}; do
  fw --zone="$zone" --add-port="${port}/udp"
done
for protocol in $(firewall-cmd --permanent --zone="$zone" --list-protocols); do
  fw --zone="$zone" --remove-protocol="$protocol"
done
for protocol in ${PROTOCOLS:-}; do
  fw --zone="$zone" --add-protocol="$protocol"
done
for source in $(firewall-cmd --permanent --zone=trusted --list-sources); do
  fw --zone=trusted --remove-source="$source"
done
for source in ${TRUSTED_SOURCES:-}; do
  fw --zone=trusted --add-source="$source"
done
# Rich rules in the zone (not a zone bound to the sources: a source belongs to one zone
# only, the pod CIDR is already the trusted zone's, and a source-bound zone would take
# every other port from those sources away from this one). Rich rules are evaluated
# before the zone's DROP target.
rules=$(firewall-cmd --permanent --zone="$zone" --list-rich-rules)
while IFS= read -r rule; do
  if [[ -n "$rule" ]]; then fw --zone="$zone" --remove-rich-rule="$rule"; fi
done <<<"$rules"
for source in ${METRICS_SOURCES:-}; do
  family=ipv4
  if [[ "$source" == *:* ]]; then family=ipv6; fi
  for port in ${METRICS_PORTS:-}; do
    fw --zone="$zone" --add-rich-rule="rule family=\"${family}\" source address=\"${source}\" port port=\"${port}\" protocol=\"tcp\" accept"
  done
done

# Load the permanent ports into the running zone first, then make it the default:
# the SSH port is open in it before any interface lands there.
firewall-cmd -q --reload
firewall-cmd -q --set-default-zone="$zone"
echo "firewalld: default zone ${zone}, tcp ${TCP_PORTS:-none}, udp ${UDP_PORTS:-none}," \
  "metrics ${METRICS_PORTS:-none} from $(wc -w <<<"${METRICS_SOURCES:-}") sources"
