"""Quality of the defocus maps against exact truth and masks, with the peers in the same run.

    python benchmarks/quality.py [--data DIR] [--sections syndof scenes dbd fusion] [-o OUT_DIR]
                                 [--json OUT.json] [--limit 100] [--no-peers] [estimator options]

Same as ``fastdefocus eval`` (see :mod:`fastdefocus.eval.quality` for the sections).
"""
import sys

from fastdefocus.cli.eval import quality_main

if __name__ == "__main__":
    sys.exit(quality_main())
