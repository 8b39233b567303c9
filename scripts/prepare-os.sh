#!/usr/bin/env bash
# OS preparation on CentOS Stream 9: base packages, swap off, and on Kubernetes
# nodes the pkgs.k8s.io repository with kubelet/kubeadm/kubectl pinned.
# Env: KUBERNETES_VERSION (x.y.z, empty on hosts that run no kubelet), KUBERNETES_MINOR (x.y).
# Safe to run twice: dnf and the repo file converge, swapoff is a no-op when off.
set -euo pipefail

dnf -y -q install chrony firewalld audit policycoreutils-python-utils rsyslog tar openssl curl </dev/null

# Kubernetes refuses to start a kubelet with swap on.
swapoff -a
sed -i -E '/^[^#].*\sswap\s/s/^/# disabled by seoul-cluster: /' /etc/fstab

if [[ -n "${KUBERNETES_VERSION:-}" ]]; then
  cat >/etc/yum.repos.d/kubernetes.repo <<REPO
[kubernetes]
name=Kubernetes ${KUBERNETES_MINOR}
baseurl=https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/rpm/
enabled=1
gpgcheck=1
gpgkey=https://pkgs.k8s.io/core:/stable:/v${KUBERNETES_MINOR}/rpm/repodata/repomd.xml.key
exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni
REPO
  # Install once. A later version bump must not upgrade kubelets ahead of the control
  # plane: upgrades follow `kubeadm upgrade`, node by node (docs/kubernetes.md).
  if installed="$(rpm -q --qf '%{VERSION}' kubeadm 2>/dev/null)"; then
    if [[ "$installed" != "$KUBERNETES_VERSION" ]]; then
      echo "kubeadm ${installed} is installed, ${KUBERNETES_VERSION} is configured: upgrade with kubeadm upgrade" >&2
    fi
  else
    dnf -y -q install --disableexcludes=kubernetes \
      "kubelet-${KUBERNETES_VERSION}" "kubeadm-${KUBERNETES_VERSION}" "kubectl-${KUBERNETES_VERSION}" </dev/null
  fi
  systemctl enable kubelet
fi
echo "prepared: kubernetes=${KUBERNETES_VERSION:-none}"
