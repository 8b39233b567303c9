"""The stack config as one validated model (see ../shared/design/stack-config.md).

Structure and ranges are declared on the fields; facts that span several keys
(uniqueness, CIDR containment, etcd quorum) are checked in `model.invariants`.
"""

from model.load import PROJECT, SECRET_KEYS, SECRET_PLACEHOLDER, ConfigError, load_config
from model.schema import CephPool, HostSpec, Role, StackConfig

__all__ = [
    "PROJECT",
    "SECRET_KEYS",
    "SECRET_PLACEHOLDER",
    "CephPool",
    "ConfigError",
    "HostSpec",
    "Role",
    "StackConfig",
    "load_config",
]
