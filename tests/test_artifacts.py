"""Artifacts are read back from registrations: Kubernetes objects land as YAML by namespace."""

import pytest
import yaml

from offline import artifacts
from offline.registry import Registration
from tests.policy_fixtures import to_struct


def registration(type_: str, name: str, inputs: dict) -> Registration:
    struct = to_struct(inputs)
    return Registration(urn=f"urn:pulumi:s::p::{type_}::{name}", type=type_, name=name, parent="", custom=True,
                        protect=False, provider="", dependencies=[], property_dependencies={}, inputs=struct)


def test_kubernetes_objects_are_written_by_namespace_and_kind(tmp_path):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "shop-api", "namespace": "apps"}, "spec": {"replicas": 3}}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}
    regs = [registration("kubernetes:apps/v1:Deployment", "shop-api", deployment),
            registration("kubernetes:core/v1:Namespace", "apps", namespace),
            registration("pulumi:providers:kubernetes", "k8s", {"kubeconfig": "x"})]
    assert artifacts.write(tmp_path, regs, {}) == 2
    assert yaml.safe_load((tmp_path / "k8s/apps/Deployment-shop-api.yaml").read_text()) == deployment
    assert yaml.safe_load((tmp_path / "k8s/_cluster/Namespace-apps.yaml").read_text()) == namespace


@pytest.mark.parametrize("namespace", ["../../escaped", "/tmp/escaped"])
def test_an_artifact_path_that_would_leave_the_folder_is_refused(tmp_path, namespace):
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": namespace}}
    out = tmp_path / "artifacts"
    with pytest.raises(ValueError, match="is not under"):
        artifacts.write(out, [registration("kubernetes:core/v1:ConfigMap", "x", config_map)], {})
    assert [p.name for p in tmp_path.iterdir()] == ["artifacts"] and not any(out.iterdir())
