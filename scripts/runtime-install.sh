#!/usr/bin/env bash
# Install the pinned container runtime on a Kubernetes node: containerd, or Docker Engine
# plus cri-dockerd (sha256-verified). The repository file and the runtime configs are
# written before this runs; kubelet/kubeadm/kubectl, swap and kernel settings come from the
# hosts component. Restarts the runtime only when its settings changed (FINGERPRINT).
# Parameters: RUNTIME CONTAINERD_VERSION FINGERPRINT
#             [DOCKER_VERSION CRI_DOCKERD_VERSION CRI_DOCKERD_SHA256]   (RUNTIME=docker)
set -euo pipefail
: "${RUNTIME:?}" "${CONTAINERD_VERSION:?}" "${FINGERPRINT:?}"
STAMP=/etc/containerd/.seoul-applied-fingerprint

installed() { rpm -q --qf '%{VERSION}' "$1" 2>/dev/null || true; }

packages=("containerd.io-$CONTAINERD_VERSION" container-selinux)
if [[ "$RUNTIME" == "docker" ]]; then
  : "${DOCKER_VERSION:?}" "${CRI_DOCKERD_VERSION:?}" "${CRI_DOCKERD_SHA256:?}"
  packages+=("docker-ce-$DOCKER_VERSION" "docker-ce-cli-$DOCKER_VERSION")
fi
dnf install -y -q --setopt=install_weak_deps=False --disableexcludes=docker-ce-stable "${packages[@]}" </dev/null

if [[ "$RUNTIME" == "docker" ]]; then
  if [[ "$(/usr/local/bin/cri-dockerd --version 2>&1 | awk '{ print $2 }')" != "$CRI_DOCKERD_VERSION" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    curl --fail --silent --show-error --location --retry 5 --retry-delay 3 --output "$work/cri-dockerd.tgz" \
      "https://github.com/Mirantis/cri-dockerd/releases/download/v$CRI_DOCKERD_VERSION/cri-dockerd-$CRI_DOCKERD_VERSION.amd64.tgz"
    echo "$CRI_DOCKERD_SHA256  $work/cri-dockerd.tgz" | sha256sum --check --quiet -
    tar -xzf "$work/cri-dockerd.tgz" -C "$work"
    install -m 0755 -o root -g root "$work/cri-dockerd/cri-dockerd" /usr/local/bin/cri-dockerd
    if command -v restorecon >/dev/null; then restorecon /usr/local/bin/cri-dockerd; fi
  fi
  services=(docker cri-docker.socket cri-docker.service)
else
  services=(containerd)
fi

systemctl daemon-reload
systemctl enable --now "${services[@]}"
if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$FINGERPRINT" ]]; then
  if [[ -f /etc/kubernetes/kubelet.conf ]]; then
    echo "runtime settings changed on a running node: restarting ${services[*]} (containers keep running)"
  fi
  systemctl restart "${services[@]}"
  install -d -m 0755 "$(dirname "$STAMP")"
  echo "$FINGERPRINT" >"$STAMP"
fi
echo "runtime $RUNTIME ready: containerd $(installed containerd.io)${DOCKER_VERSION:+, docker $(installed docker-ce), cri-dockerd $CRI_DOCKERD_VERSION}"
