"""Entry point the Pulumi CLI runs for `--policy-pack policies`: builds the PolicyPack and serves.

The CLI runs this file with the pack directory as the working directory (runpy), so the
repository root is put on sys.path to import the `policies` package. Never import this module:
the PolicyPack constructor serves gRPC forever.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from policies.pack import serve

serve()
