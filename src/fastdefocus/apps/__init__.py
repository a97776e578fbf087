"""What the defocus map is for: magnification, adaptive enhancement, multi-focus fusion.

- :func:`magnify`: a shallower depth of field. A point blurred by sigma goes to
  ``amount * sigma`` (counted beyond an in-focus level); a few whole-image blurs
  (layers) are blended per pixel.
- :func:`enhance`: unsharp masking whose gain falls with sigma, so what is in
  focus gets crisper and the bokeh (and its noise) is left alone.
- :func:`fuse`: multi-focus fusion of two or more shots of one scene.

Every function takes images as :func:`fastdefocus._validate.check_image` accepts
them (uint8, uint16 or float in [0, 1]; gray, RGB or RGBA) and returns NumPy
arrays of the input's dtype and shape; alpha passes through untouched. A sigma
map (Gaussian sigma in px, as :class:`fastdefocus.DefocusResult` holds it) may be
given; without one the shipped estimator computes it.

The command line's ``fastdefocus magnify``, ``enhance`` and ``fuse`` live in
:mod:`fastdefocus.cli.apps`.
"""
from fastdefocus.apps.enhance import enhance
from fastdefocus.apps.fuse import fuse
from fastdefocus.apps.magnify import magnify

__all__ = ["magnify", "enhance", "fuse"]
