"""Multi-focus fusion on the Lytro pairs: fastdefocus.fuse against GFF and a Laplacian-energy decision.

    python benchmarks/fusion.py [--data DIR] [--pairs lytro_01 ...] [--json OUT.json] [estimator options]

The methods and metrics live in :mod:`fastdefocus.eval.fusion` (the ``fusion`` section of
``fastdefocus eval`` runs the same comparison).
"""
import sys

from fastdefocus.cli.eval import fusion_main

if __name__ == "__main__":
    sys.exit(fusion_main())
