"""Outside tools the tests need: skip with the reason locally, fail in CI (CI=true)."""

import os
import shutil
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip locally; in CI a missing prerequisite is a failure, never a silent skip."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Path of `name` on PATH (or /usr/sbin), installed by `make test-tools`."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        unavailable(f"{name} is not installed (run `make test-tools`)")
    return path


def require_shared(relative: str) -> Path:
    """A file from ../shared, which sits beside the repository on team machines and in CI."""
    path = SHARED / relative
    if not path.exists():
        unavailable(f"{path} is absent (../shared sits beside the repository, not in a clone)")
    return path


def require_loopback_ports(hosts: int, ports: tuple[int, ...]) -> None:
    """127.0.0.1..<hosts> must be free on `ports` (bound as etcd binds, with SO_REUSEADDR)."""
    for i in range(1, hosts + 1):
        for port in ports:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((f"127.0.0.{i}", port))
                except OSError:
                    unavailable(f"port {port} on 127.0.0.{i} is in use")
