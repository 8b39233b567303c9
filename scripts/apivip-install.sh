#!/usr/bin/env bash
# Install HAProxy and Keepalived (CentOS Stream 9 AppStream) and the host settings they need:
# binding the VIP before this host holds it, and SELinux letting HAProxy reach port 6443.
set -euo pipefail

dnf install -y --setopt=install_weak_deps=False haproxy keepalived curl </dev/null

cat >/etc/sysctl.d/90-apivip.conf <<'SYSCTL'
# HAProxy binds the API VIP on every control plane, also where Keepalived has not placed it.
net.ipv4.ip_nonlocal_bind = 1
SYSCTL
sysctl --quiet --load /etc/sysctl.d/90-apivip.conf

if command -v getenforce >/dev/null && [[ "$(getenforce)" != "Disabled" ]]; then
  # HAProxy connects to kube-apiserver on 6443, which is not an http_port_t port.
  if [[ "$(getsebool haproxy_connect_any | awk '{ print $3 }')" != "on" ]]; then
    setsebool -P haproxy_connect_any 1
  fi
fi
echo "haproxy $(rpm -q --qf '%{VERSION}' haproxy), keepalived $(rpm -q --qf '%{VERSION}' keepalived) installed"
