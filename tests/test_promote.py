"""The promotion gate: prod runs no version and no resource kind that stage does not run."""

import subprocess
import sys

from review.promote import refusals, versions
from tests.stacks import altered_stack, key
from tests.tools import REPO


def gate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "review.promote", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_shipped_stacks_pass_and_a_newer_kubernetes_in_prod_is_refused(tmp_path):
    shipped = gate("--build", str(tmp_path / "shipped"))
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "Promotion allowed" in shipped.stdout
    assert "hosts with role worker: stage 3, prod 9" in shipped.stdout

    newer = altered_stack(tmp_path, "seoul-prod", lambda c: c[key("kubernetes")].update(version="1.29.7"))
    refused = gate("--prod-file", str(newer), "--build", str(tmp_path / "newer"))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "config:kubernetes.version: prod would run 1.29.7; stage runs 1.29.6" in refused.stderr


def test_versions_come_from_config_charts_and_images():
    config = {"seoul-cluster:etcd": {"version": "3.5.12"}, "seoul-cluster:kubernetes": {"containerdVersion": "1.7"}}
    plan = {"resources": [
        {"type": "kubernetes:helm.sh/v3:Release", "name": "calico", "inputs": {"chart": "tigera-operator",
                                                                                 "version": "v3.27.5"}},
        {"type": "command:remote:Command", "name": "x",
         "inputs": {"stdin": "sandbox_image = \"registry.k8s.io/pause:3.9\"\nimage: quay.io/calico/node:v3.27.5"}},
    ]}
    assert versions(config, plan) == {
        "config:etcd.version": {"3.5.12"}, "config:kubernetes.containerdVersion": {"1.7"},
        "chart:tigera-operator": {"v3.27.5"}, "image:registry.k8s.io/pause": {"3.9"},
        "image:quay.io/calico/node": {"v3.27.5"},
    }


def test_refusals_name_new_versions_and_kinds_only():
    stage = {"config:ceph.version": {"18.2.2"}, "image:quay.io/ceph/ceph": {"v18.2.2"}}
    prod = {"config:ceph.version": {"18.2.4"}, "image:quay.io/ceph/ceph": {"v18.2.2"}}
    reasons = refusals(stage, prod, {"a", "b"}, {"a", "c"})
    assert reasons == ["config:ceph.version: prod would run 18.2.4; stage runs 18.2.2",
                       "kind c: in prod's plan, not in stage's"]
    assert refusals(prod, stage, {"a", "c"}, {"a"}) != []  # stage ahead on ceph: prod's 18.2.2 is not on stage
    assert refusals(stage, stage, {"a", "b"}, {"a"}) == []  # fewer kinds in prod is fine
