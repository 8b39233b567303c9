"""Run `bench/floor_program.py` under the offline engine:
`python -m bench.floor N INPUT_BYTES [MODULES_FILE] [--gc-default]`.

Same process shape as `python -m offline.plan`: interpreter start, the same SDK imports,
the same mocks and recording monitor (`offline.engine.run_program`), then exit. MODULES_FILE
names the provider SDK modules the measured program loaded, one a line (`bench/phases.py`
writes it); the floor imports them too. With
`--gc-default` the engine leaves Python's cyclic collector as it is by default (the SDK as
anyone runs it, and the floor issue 16 measured against) instead of pausing it.
"""

import sys
from pathlib import Path

from offline.engine import run_program
from offline.stackfile import StackFile


def main(argv: list[str]) -> int:
    gc_default = "--gc-default" in argv
    count, input_bytes, *modules_file = (a for a in argv if a != "--gc-default")
    modules = Path(modules_file[0]).read_text().split() if modules_file else []
    stack = StackFile("floor", {"floor:resources": count, "floor:inputBytes": input_bytes,
                                "floor:modules": ",".join(modules)}, [])
    registrations, _ = run_program(Path(__file__).with_name("floor_program.py"), stack, pause_gc=not gc_default)
    print(f"{len(registrations)} resources, "
          f"{sum(r.inputs.ByteSize() for r in registrations) // max(1, len(registrations))} bytes of inputs each")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
