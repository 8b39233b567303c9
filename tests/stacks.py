"""Copies of the real stack files with one change, for tests that need a bad or altered stack."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.tools import REPO

Config = dict[str, Any]


def stack_config(stack: str) -> Config:
    return yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]


def write_stack(folder: Path, name: str, config: Config) -> Path:
    path = folder / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def altered_stack(folder: Path, stack: str, change: Callable[[Config], None], name: str | None = None) -> Path:
    """Pulumi.<name>.yaml in `folder`: `stack`'s config with `change` applied."""
    config = copy.deepcopy(stack_config(stack))
    change(config)
    return write_stack(folder, name or f"{stack}-copy", config)


def key(short: str) -> str:
    return short if ":" in short else f"seoul-cluster:{short}"
