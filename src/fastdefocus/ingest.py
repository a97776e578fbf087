"""The ingest stage: any supported image -> luminance float32 in [0, 1].

One place validates what users pass in, so every public entry point gives the
same errors: each names the argument, what was expected and what arrived.
"""
from __future__ import annotations

import numpy as np

#: Rec. 601 luma weights (R, G, B): what the classifier was trained on
#: (OpenCV's grayscale conversion of the training photos).
LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Floats may overshoot [0, 1] by rounding (resampling, colour conversion); more is an error.
FLOAT_SLACK = 1e-3


def _from_torch(image):
    """torch tensor -> NumPy (CPU), channel-first (C, H, W) moved to channel-last."""
    t = image.detach()
    if t.is_cuda or t.device.type != "cpu":
        t = t.cpu()
    if t.dtype.is_floating_point and t.dtype != t.new_zeros(()).float().dtype:
        t = t.float()  # bfloat16/float16 have no NumPy counterpart everywhere
    arr = t.numpy()
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
    return arr


def as_array(image, name: str = "image") -> np.ndarray:
    """Turn NumPy arrays, torch tensors and array-likes into a NumPy array (no copy if possible)."""
    if isinstance(image, np.ndarray):
        return image
    if type(image).__module__.startswith("torch"):
        return _from_torch(image)
    if hasattr(image, "__array__") or isinstance(image, (list, tuple)):
        return np.asarray(image)
    raise TypeError(f"{name} must be a NumPy array or a torch tensor (H x W, H x W x C), "
                    f"got {type(image).__name__}")


def check_image(image, name: str = "image") -> np.ndarray:
    """Validate an image and return it as a NumPy array (H, W) or (H, W, C), C in 1..4."""
    arr = as_array(image, name)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.complexfloating) or arr.dtype == object \
            or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must have dtype uint8, uint16 or float (values in [0, 1]), got {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2-D (H, W) or 3-D (H, W, C), got {arr.ndim}-D shape {arr.shape}")
    if arr.ndim == 3 and not 1 <= arr.shape[2] <= 4:
        raise ValueError(f"{name} must have 1 (gray), 3 (RGB) or 4 (RGBA) channels, got {arr.shape[2]} "
                         f"(shape {arr.shape})")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} has zero height or width (shape {arr.shape}): expected at least 1 x 1 pixels")
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            raise ValueError(f"{name} contains {int(arr.size - finite.sum())} NaN or infinite values: "
                             "expected finite values in [0, 1]")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
            raise ValueError(f"{name} is float with values in [{lo:.4g}, {hi:.4g}]: expected [0, 1] "
                             "(pass uint8 or uint16 for 0-255 or 0-65535 data)")
    elif arr.dtype not in (np.uint8, np.uint16):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise TypeError(f"{name} has integer dtype {arr.dtype} with values in [{lo}, {hi}]: expected uint8, "
                            "uint16 or float in [0, 1]")
    return arr


def to_luminance(image, name: str = "image") -> np.ndarray:
    """Luminance of an image as C-contiguous float32 in [0, 1] (H, W).

    Parameters
    ----------
    image : array (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; or a torch tensor
        (H, W) or (C, H, W). uint8 (0-255), uint16 (0-65535), or float in [0, 1]. Other
        integer dtypes are accepted when their values fit 0-255. Alpha is ignored.
    """
    arr = check_image(image, name)
    if arr.dtype == np.uint16:
        scale = 1.0 / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        scale = 1.0
    else:
        scale = 1.0 / 255.0
    if arr.ndim == 3:
        if arr.shape[2] >= 3:
            lum = arr[..., :3].astype(np.float32, copy=False) @ LUMA_RGB
        else:
            lum = arr[..., 0].astype(np.float32)
    else:
        lum = arr.astype(np.float32, copy=False)
    lum = lum * np.float32(scale) if scale != 1.0 else lum
    return np.ascontiguousarray(np.clip(lum, 0.0, 1.0), dtype=np.float32)
