"""GPU benchmark: correctness against the CPU path, stage timings, streaming throughput.

    python -m fastdefocus.eval.gpu_bench [--json gpu_bench.json] [--backends auto|all|tensorrt,compile,eager]
                                         [--frames 300] [--quick] [--budget 420] [--simulator]

This file only forwards to :mod:`fastdefocus.eval.gpu_bench` (same options; see its docstring).
"""
import sys

from fastdefocus.eval.gpu_bench import main

if __name__ == "__main__":
    sys.exit(main())
