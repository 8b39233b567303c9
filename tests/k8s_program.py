"""`__main__.py` plus the Kubernetes core, as the main program is expected to wire it.

Used by tests/test_k8s_components.py to run the composed program under the offline
engine (preview semantics) until `__main__.py` calls `build_kubernetes` itself.
"""

import runpy
from pathlib import Path

import pulumi

from components.kubernetes import build_kubernetes

program = runpy.run_path(str(Path(__file__).resolve().parent.parent / "__main__.py"), run_name="__main__")
if "cluster" not in program:  # __main__ does not build the Kubernetes core yet
    cluster = build_kubernetes(program["cfg"], program["hosts"])
    pulumi.export("kubeconfig", cluster.kubeconfig)
    for name, value in cluster.outputs.items():
        pulumi.export(name, value)
