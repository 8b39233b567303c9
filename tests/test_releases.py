"""Pinned releases (model/releases.py): every default has its entries, and an unreviewed
release is refused while the config is validated, naming the key, before anything runs."""

import pytest

from model import ConfigError, load_config, releases
from offline.stackfile import stack_from_config
from tests.stacks import key, stack_config

STACKS = ["seoul-prod", "seoul-stage"]


def load_with(stack: str, section: str, **changes):
    config = stack_config(stack)
    config[key(section)] = {**config[key(section)], **changes}
    return load_config(stack_from_config(stack, config).lookup)


def test_every_default_release_has_its_table_entries():
    assert releases.CRI_DOCKERD_VERSION in releases.CRI_DOCKERD_SHA256
    for table in (releases.ETCD_ARCHIVE_SHA256, releases.CRI_DOCKERD_SHA256):
        assert all(len(sha) == 64 and int(sha, 16) >= 0 for sha in table.values())


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_use_reviewed_releases(stack):
    cfg = load_with(stack, "kubernetes")
    assert releases.etcd_archive(cfg.etcd.version).sha256 == releases.ETCD_ARCHIVE_SHA256[cfg.etcd.version]
    assert releases.pause_image(cfg.kubernetes.version).startswith("registry.k8s.io/pause:")


@pytest.mark.parametrize("stack", STACKS)
def test_docker_runtime_with_the_default_versions_is_accepted(stack):
    """It was refused: the default cri-dockerd had no checksum in the table."""
    cfg = load_with(stack, "kubernetes", containerRuntime="docker")
    assert cfg.kubernetes.cri_dockerd_version == releases.CRI_DOCKERD_VERSION


@pytest.mark.parametrize(
    ("section", "changes", "expected"),
    [
        ("etcd", {"version": "3.5.99"}, "etcd.version: 3.5.99: no reviewed sha256"),
        ("kubernetes", {"version": "1.30.2"}, "kubernetes.version: 1.30.2: no pause image known for 1.30"),
        (
            "kubernetes",
            {"containerRuntime": "docker", "criDockerdVersion": "0.3.99"},
            "kubernetes.criDockerdVersion: 0.3.99: no reviewed sha256",
        ),
    ],
)
def test_an_unreviewed_release_is_invalid_config(section, changes, expected):
    with pytest.raises(ConfigError) as err:
        load_with("seoul-prod", section, **changes)
    assert any(line.startswith(expected) for line in err.value.lines), err.value.lines


def test_a_cri_dockerd_version_is_not_checked_while_containerd_runs():
    cfg = load_with("seoul-prod", "kubernetes", criDockerdVersion="0.3.99")
    assert cfg.kubernetes.container_runtime == "containerd"
