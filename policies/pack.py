"""The seoul-cluster policy pack: its name, version and the full list of policies.

Both `policies/__main__.py` (what `pulumi preview --policy-pack policies` runs) and the
offline runner (`offline/policy_host.py`) build their analyzer from this module, so there is
exactly one implementation of every rule.

Areas and rule names (`<area>-<rule>`):
  hosts.py       hosts-*          sshd, SELinux, firewalld, secrets in command lines
  residency.py   residency-*      AWS region and S3 replication stay in ap-northeast-2 (PIPA)
  backups.py     backup-*         backup bucket hardening, KMS rotation, protect in prod
  resilience.py  etcd-*, controlplane-*, f5-*, ceph-*
  kubernetes.py  k8s-*            version pinning, app workload sizing/HPA/PDB, privilege
  network.py     fortigate-*      no any-to-any accept, logging on every policy, no SSH from the internet

Conventions the rules rely on (the program's contract):
  * Backup buckets are `aws:s3/bucket:Bucket` resources tagged `backup: "true"`.
  * Hosts are `seoul:hosts:Host` components with `address` and `roles` (the component
    should also `register_outputs` them: the CLI's AnalyzeStack sees outputs).
  * Remote steps are `command:remote:Command` file puts
    (`sudo install -D -m <mode> -o root -g root /dev/stdin <path>`, content on stdin) and
    script runs (`sudo env K=V ... bash -s`, script on stdin); a step belongs to a host
    when the Host component is its parent or it connects to the host's address.
  * "prod" is decided by the pack config: `backup-bucket-protected.requireProtect`.

Enforcement: every policy defaults to advisory; `policies/config/prod.json` sets
`"all": "mandatory"`, `policies/config/stage.json` sets `"all": "advisory"`.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from . import backups, hosts, kubernetes, network, residency, resilience

PACK_NAME = "seoul-cluster-guard"
# Must match `version` in PulumiPolicy.yaml (the CLI takes the version from there).
PACK_VERSION = "0.1.0"
PACK_DESCRIPTION = (
    "seoul-cluster guard rails: host hardening, Korean data residency, backups, resilience, Kubernetes workloads"
)
DEFAULT_ENFORCEMENT_LEVEL = EnforcementLevel.ADVISORY

POLICIES: list[Policy] = [
    *hosts.POLICIES,
    *residency.POLICIES,
    *backups.POLICIES,
    *resilience.POLICIES,
    *kubernetes.POLICIES,
    *network.POLICIES,
]


def policy_names() -> list[str]:
    return [p.name for p in POLICIES]


def _check_unique_names() -> None:
    names = policy_names()
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate policy names: {duplicates}")


_check_unique_names()
