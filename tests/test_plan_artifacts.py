"""What `make plan STACK=seoul-prod` writes for each host passes the checker of the daemon that reads it."""

import pytest
import yaml

from render.hosts import SSHD_DROPIN
from tests.planning import run_plan
from tests.stacks import key, stack_config
from tests.test_host_files import effective_sshd_config
from tests.test_render_k8s import etcd_flags, haproxy_check, keepalived_check
from tests.tools import REPO


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    run = run_plan(REPO / "Pulumi.seoul-prod.yaml", tmp_path_factory.mktemp("prod"))
    assert run.returncode == 0, run.stderr
    return run


def hosts_with(role: str) -> list[str]:
    return [h["name"] for h in stack_config("seoul-prod")[key("hosts")] if role in h["roles"]]


def artifact(run, host: str, path: str):
    return run.out / "artifacts/hosts" / host / path.lstrip("/")


def test_plan_shows_the_kubernetes_core(prod):
    for kind in ("seoul:etcd:EtcdCluster", "seoul:apivip:ApiVip", "seoul:kubernetes:ControlPlane",
                 "seoul:kubernetes:WorkerPool"):
        assert kind in prod.stdout


@pytest.mark.parametrize("host", hosts_with("control-plane"))
def test_control_plane_artifacts_pass_haproxy_and_keepalived(prod, host, tmp_path):
    checked = haproxy_check(artifact(prod, host, "/etc/haproxy/haproxy.cfg"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    conf = artifact(prod, host, "/etc/keepalived/keepalived.conf").read_text()
    assert keepalived_check(tmp_path, conf) == ""


@pytest.mark.parametrize("host", hosts_with("control-plane") + hosts_with("storage")[:1])
def test_sshd_dropin_artifact_passes_sshd(prod, host, tmp_path):
    dropin = artifact(prod, host, SSHD_DROPIN).read_text()
    assert effective_sshd_config(tmp_path, dropin)["passwordauthentication"] == "no"


@pytest.mark.parametrize("host", hosts_with("etcd"))
def test_etcd_artifacts_use_only_settings_etcd_knows(prod, host):
    settings = yaml.safe_load(artifact(prod, host, "/etc/etcd/etcd.conf.yml").read_text())
    known = etcd_flags()
    assert settings["name"] == host
    for name, value in settings.items():
        keys = set(value) if name.endswith("-transport-security") else {name}
        assert keys <= known, keys - known
    assert len(settings["initial-cluster"].split(",")) == len(hosts_with("etcd"))
