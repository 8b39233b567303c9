"""Run `bench/floor_program.py` under the offline engine: `python -m bench.floor N INPUT_BYTES [--gc-default]`.

Same process shape as `python -m offline.plan`: interpreter start, the same SDK imports,
the same mocks and recording monitor (`offline.engine.run_program`), then exit. With
`--gc-default` the engine leaves Python's cyclic collector as it is by default (the SDK as
anyone runs it, and the floor issue 16 measured against) instead of pausing it.
"""

import sys
from pathlib import Path

from offline.engine import run_program
from offline.stackfile import StackFile


def main(argv: list[str]) -> int:
    gc_default = "--gc-default" in argv
    count, input_bytes = (int(a) for a in argv if a != "--gc-default")
    stack = StackFile("floor", {"floor:resources": str(count), "floor:inputBytes": str(input_bytes)}, [])
    registrations, _ = run_program(Path(__file__).with_name("floor_program.py"), stack, pause_gc=not gc_default)
    print(f"{len(registrations)} resources, "
          f"{sum(r.inputs.ByteSize() for r in registrations) // max(1, len(registrations))} bytes of inputs each")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
