"""Entry point the Pulumi CLI runs for `--policy-pack policies`: builds the PolicyPack, nothing else.

The PolicyPack constructor starts the analyzer gRPC server, prints its port and serves
forever, so nothing may import this module (the offline runner builds its analyzer from
`policies.pack` instead). The CLI runs this file with the pack directory as sys.path[0], so
the repository root is added to import the `policies` package.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

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
