"""The host that ran `kubeadm init` and the one that made the etcd CA stay put as the inventory changes."""

from offline.wire import plain
from tests.planning import inputs_by_urn, registrations
from tests.stacks import altered_stack, key
from tests.tools import REPO


def add_hosts_sorting_first(c):
    c[key("hosts")] += [
        {"name": "cp-0", "address": "10.0.1.20", "roles": ["control-plane"]},
        {"name": "etcd-0", "address": "10.0.1.30", "roles": ["etcd"]},
        {"name": "etcd-00", "address": "10.0.1.29", "roles": ["etcd"]},
    ]


def test_hosts_that_sort_first_join_and_change_nothing_existing(tmp_path):
    before = inputs_by_urn(registrations(REPO / "Pulumi.seoul-prod.yaml"))
    after = inputs_by_urn(registrations(altered_stack(tmp_path, "seoul-prod", add_hosts_sorting_first,
                                                      name="seoul-prod")))
    gone = set(before) - set(after)
    assert not gone, sorted(gone)
    names = {urn.rsplit("::", 1)[1] for urn in set(after) - set(before)}
    assert "cp-0-kubeadm-join" in names and "cp-0-kubeadm-init" not in names
    assert "etcd-0-etcd-ca" not in names and "etcd-0-etcd-ca-key" in names
    changed = sorted(urn.rsplit("::", 1)[1] for urn in before if before[urn] != after[urn])
    # Only what must learn of the new members changes: etcd and API server membership,
    # Prometheus's scrape targets (the kube-prometheus-stack release's values), the uplink
    # verdict the offsite component registers (it counts the etcd members' snapshots), the
    # Ceph backup's rclone limit (its part of the uplink share shrinks as etcd's grows) and
    # Logstash (it admits the new etcd hosts' agents at its LoadBalancer address).
    expected = ("kube-prometheus-stack", "offsite", "logging-logs")
    assert all(n.startswith(("cp-", "etcd-", "osd-1-backup-ceph-")) or n in expected for n in changed), changed
    assert not [n for n in changed if n.endswith(("-kubeadm-init", "-etcd-ca", "-etcd-ca-export"))], changed


def test_copied_etcd_ca_survives_the_removal_of_its_resource():
    regs = registrations(REPO / "Pulumi.seoul-prod.yaml")
    copies = [plain(r.inputs) for r in regs if r.name.endswith(("-etcd-ca-cert", "-etcd-ca-key"))
              and r.parent.endswith("seoul:etcd:EtcdCluster::etcd")]
    assert len(copies) == 4  # etcd-2 and etcd-3, a certificate and a key each
    assert all("delete" not in c for c in copies)
