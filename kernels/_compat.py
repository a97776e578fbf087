"""Compatibility measures applied before Numba's CUDA target is imported.

numpy 2.5 removed ``np.row_stack`` (deprecated since numpy 2.0 as an alias of
``np.vstack``).  numba-cuda (seen with 0.30.4) still registers an overload for
it unconditionally when its array implementations are imported, i.e. the first
time any kernel is compiled, so under numpy >= 2.5 every kernel fails with
``AttributeError: module 'numpy' has no attribute 'row_stack'``.  (Numba's own
CPU target already guards the registration with ``numpy_version < (2, 5)``.)

The measure is narrow: only when the attribute is missing, ``np.row_stack`` is
set back to ``np.vstack`` -- exactly what it was before numpy removed it -- so
numba-cuda's registration succeeds.  It changes nothing on numpy < 2.5, and it
can be dropped once the minimum numba-cuda guards the registration itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ensure_numpy_row_stack", "import_cuda"]


def ensure_numpy_row_stack() -> bool:
    """Restore ``np.row_stack`` as ``np.vstack`` if numpy lacks it (numpy >= 2.5).

    Returns True if the attribute was added, False if it was already there.
    """
    if hasattr(np, "row_stack"):
        return False
    np.row_stack = np.vstack
    return True


def import_cuda():
    """Return ``numba.cuda`` after applying the compatibility measures above."""
    ensure_numpy_row_stack()
    from numba import cuda

    return cuda
