"""The ingest stage: any supported image -> luminance float32 in [0, 1] (the checks live in
:mod:`fastdefocus._validate`)."""
from __future__ import annotations

import numpy as np

from fastdefocus._params import LUMA_WEIGHTS
from fastdefocus._validate import MAX_PIXELS, _is_uint, check_channel_order, check_image, to_rgb_order

#: Rec. 601 luma weights (R, G, B) as float32: what the classifier was trained on
#: (OpenCV's grayscale conversion of the training photos).
LUMA_RGB = np.array(LUMA_WEIGHTS, dtype=np.float32)


def to_luminance(image, name: str = "image", max_pixels=MAX_PIXELS, channel_order: str = "rgb") -> np.ndarray:
    """Luminance of an image as C-contiguous float32 in [0, 1] (H, W).

    Parameters
    ----------
    image : array (H, W), (H, W, 1), (H, W, 2) gray + alpha, (H, W, 3) RGB or (H, W, 4) RGBA;
        or a torch tensor (H, W) or (C, H, W). uint8 (0-255), uint16 (0-65535), or float in
        [0, 1]. Other integer dtypes are accepted when their values fit 0-255. Alpha is
        ignored. Any memory layout (strided, Fortran-order, read-only) is accepted.
    name, max_pixels
        As :func:`check_image`.
    channel_order : {"rgb", "bgr"}
        The order of the colour channels ("bgr": OpenCV's, as ``cv2.imread`` gives them);
        validated here. A BGR image and its RGB copy give the same luminance, bit for bit.

    Returns
    -------
    numpy.ndarray, float32 (H, W), C-contiguous, values in [0, 1]
        Rec. 601 luma of RGB, the first channel otherwise.

    Raises
    ------
    TypeError, ValueError
        As :func:`check_image`.
    """
    channel_order = check_channel_order(channel_order)
    return checked_image_luminance(check_image(image, name, max_pixels), channel_order)


def checked_image_luminance(image: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
    """:func:`to_luminance` of an array :func:`check_image` has already validated (and a
    ``channel_order`` already checked): the luminance without validating it again."""
    arr = to_rgb_order(image, channel_order)
    if _is_uint(arr.dtype, 2):
        scale = 1.0 / 65535.0
    elif arr.dtype.kind == "f":
        scale = 1.0
    else:
        scale = 1.0 / 255.0
    if arr.ndim == 3:
        if arr.shape[2] >= 3:
            # elementwise, not a BLAS dot: the same bits whatever the memory layout
            rgb = arr[..., :3].astype(np.float32)
            lum = rgb[..., 0] * LUMA_RGB[0] + rgb[..., 1] * LUMA_RGB[1] + rgb[..., 2] * LUMA_RGB[2]
        else:
            lum = arr[..., 0].astype(np.float32)
    else:
        lum = arr.astype(np.float32, copy=False)
    lum = lum * np.float32(scale) if scale != 1.0 else lum
    return np.ascontiguousarray(np.clip(lum, 0.0, 1.0), dtype=np.float32)
