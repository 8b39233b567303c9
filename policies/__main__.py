"""Entry point the Pulumi CLI runs for `--policy-pack policies`: builds the PolicyPack, nothing else.

The PolicyPack constructor starts the analyzer gRPC server, prints its port and serves
forever, so nothing may import this module (the offline runner builds its analyzer from
`policies.pack` instead). The CLI runs this file as a script from the pack directory, where
the pack's modules are not yet a package: it is loaded as the package `policies` from this
folder (its modules use relative imports), without touching sys.path.
"""

import importlib.util
import pathlib
import sys

if __package__ != "policies":  # run as a script (the CLI); `python -m policies` has it already
    _here = pathlib.Path(__file__).resolve().parent
    _spec = importlib.util.spec_from_file_location("policies", _here / "__init__.py",
                                                   submodule_search_locations=[str(_here)])
    assert _spec is not None and _spec.loader is not None
    sys.modules["policies"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["policies"])

from pulumi_policy import PolicyPack

from policies.pack import (
    DEFAULT_ENFORCEMENT_LEVEL,
    PACK_DESCRIPTION,
    PACK_NAME,
    POLICIES,
)

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=DEFAULT_ENFORCEMENT_LEVEL,
    description=PACK_DESCRIPTION,
)
