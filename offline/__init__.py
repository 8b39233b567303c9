"""The offline plan: run the program under an engine-less monitor and write what it would do."""

import os

# gRPC's C core logs transport chatter (GOAWAY on shutdown) unless told otherwise; it
# reads this once, when grpc is first imported, so it is set before any submodule runs.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
