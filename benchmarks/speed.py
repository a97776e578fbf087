"""CPU speed per stage and end to end, with the baselines timed in the same run.

    python benchmarks/speed.py [--repeats 3] [--sizes 640x480 1920x1080] [--strides 8 16]
                               [--loop-patches 2000] [--no-loop] [--no-torch] [-o OUT_DIR] [--json OUT.json]

Same as ``fastdefocus bench`` (see :mod:`fastdefocus.eval.speed`).
Micro-benchmarks of the kernels: ``pytest benchmarks --benchmark-only``.
"""
import sys

from fastdefocus.cli.eval import speed_main

if __name__ == "__main__":
    sys.exit(speed_main())
