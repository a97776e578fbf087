"""The one home of argument and array checks.

Public entry points validate once, at the boundary, with these; every error names the argument,
what was expected and what arrived. Inner functions trust their callers.
"""
from __future__ import annotations

import math
import numbers
import operator

import numpy as np

#: Floats may overshoot [0, 1] by rounding (resampling, colour conversion); more is an error.
FLOAT_SLACK = 1e-3
#: Largest image that check_image, to_luminance and imageio.read_image accept by default,
#: in pixels (H x W): 8192 x 8192 = 67 Mpx; larger ones are refused before anything of their
#: size is allocated. DefocusEstimator sets its own limit from its stride (default_max_pixels).
MAX_PIXELS = 1 << 26


def check_max_pixels(max_pixels, name: str = "max_pixels"):
    """Validate a pixel limit: an integer >= 1, or None for no limit."""
    if max_pixels is None:
        return None
    if isinstance(max_pixels, (bool, np.bool_)) or not isinstance(max_pixels, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 1 or None, got {max_pixels!r} "
                        f"(type {type(max_pixels).__name__})")
    if max_pixels < 1:
        raise ValueError(f"{name} must be an integer >= 1 or None, got {max_pixels}")
    return int(max_pixels)


def check_pixel_count(height: int, width: int, max_pixels, name: str = "image",
                      knob: str = "DefocusEstimator(max_pixels=...)") -> None:
    """Refuse a height x width image above ``max_pixels`` (None: no limit), before it is read or copied."""
    if max_pixels is not None and height * width > max_pixels:
        raise ValueError(f"{name} is {width} x {height} = {height * width} pixels ({height * width / 1e6:.1f} Mpx), "
                         f"more than the limit of {max_pixels} pixels ({max_pixels / 1e6:.1f} Mpx): downscale or "
                         f"crop it, or raise the limit ({knob}) if the memory is there")


def _from_torch(image, name: str, max_pixels) -> np.ndarray:
    """torch tensor -> NumPy (CPU). 3-D tensors whose first dimension is 1 to 4 are taken as
    torch's channel-first (C, H, W) and moved to channel-last; other 3-D tensors as (H, W, C)."""
    t = image.detach()
    channel_first = t.dim() == 3 and 1 <= t.shape[0] <= 4
    if t.dim() in (2, 3):  # the size check comes before the copies to the CPU and to float32
        h, w = t.shape[-2:] if channel_first else t.shape[:2]
        check_pixel_count(int(h), int(w), max_pixels, name)
    if t.device.type != "cpu":
        t = t.cpu()
    import torch
    if t.dtype.is_floating_point and t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.float()  # bfloat16 and the float8 types have no NumPy counterpart
    try:
        arr = t.numpy()
    except (RuntimeError, TypeError) as e:  # sparse, quantized or other layouts
        raise TypeError(f"{name} must be a dense torch tensor of real numbers, got {t.layout} {t.dtype}: {e}") \
            from e
    if channel_first:
        arr = np.moveaxis(arr, 0, -1)
    return arr


def as_array(image, name: str = "image", max_pixels=None) -> np.ndarray:
    """Turn NumPy arrays, torch tensors and array-likes into a NumPy array (no copy if possible)."""
    if isinstance(image, np.ndarray):
        return image
    if type(image).__module__.startswith("torch") and hasattr(image, "detach"):
        return _from_torch(image, name, max_pixels)
    if hasattr(image, "__array__") or isinstance(image, (list, tuple)):
        try:
            return np.asarray(image)
        except ValueError as e:  # ragged nested lists
            raise ValueError(f"{name} could not be read as an array (H, W) or (H, W, C): {e}") from e
    raise TypeError(f"{name} must be a NumPy array or a torch tensor (H x W, H x W x C), "
                    f"got {type(image).__name__}")


def check_image(image, name: str = "image", max_pixels=MAX_PIXELS) -> np.ndarray:
    """Validate an image and return it as a NumPy array (H, W) or (H, W, C), C in 1..4.

    Parameters
    ----------
    image : array (H, W) or (H, W, C) with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA);
        or a torch tensor (H, W) or (C, H, W). uint8 (0-255), uint16 (0-65535) or float in
        [0, 1] (NaN and infinity refused); other integer dtypes when their values fit 0-255.
    name : str
        What to call the argument in error messages.
    max_pixels : int or None
        Largest H x W accepted (None: no limit); checked before the values are read.

    Raises
    ------
    TypeError
        If ``image`` is not an array, or its dtype is bool, complex or not numeric.
    ValueError
        On a wrong number of dimensions or channels, zero height or width, more than
        ``max_pixels`` pixels, NaN or infinity, or values outside the range of the dtype.
    """
    max_pixels = check_max_pixels(max_pixels)
    arr = as_array(image, name, max_pixels)
    if arr.dtype == np.bool_ or arr.dtype == object or not np.issubdtype(arr.dtype, np.number) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must have dtype uint8, uint16 or float (values in [0, 1]), got {arr.dtype}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2-D (H, W) or 3-D (H, W, C), got {arr.ndim}-D shape {arr.shape}")
    if arr.ndim == 3 and not 1 <= arr.shape[2] <= 4:
        hint = " (NumPy images are channel-last, (H, W, C))" if 1 <= arr.shape[0] <= 4 else ""
        raise ValueError(f"{name} must have 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) channels in "
                         f"the last axis, got {arr.shape[2]} (shape {arr.shape}){hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} has zero height or width (shape {arr.shape}): expected at least 1 x 1 pixels")
    check_pixel_count(arr.shape[0], arr.shape[1], max_pixels, name)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            raise ValueError(f"{name} contains {int(arr.size - np.count_nonzero(finite))} NaN or infinite "
                             "values: expected finite values in [0, 1]")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
            raise ValueError(f"{name} is float with values in [{lo:.4g}, {hi:.4g}]: expected [0, 1] "
                             "(pass uint8 or uint16 for 0-255 or 0-65535 data)")
    elif not _is_uint(arr.dtype, 1) and not _is_uint(arr.dtype, 2):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"{name} has integer dtype {arr.dtype} with values in [{lo}, {hi}]: expected "
                             "0-255 (or dtype uint16 for 0-65535, or float in [0, 1])")
    return arr


def _is_uint(dtype: np.dtype, itemsize: int) -> bool:
    """uint8 / uint16 in either byte order."""
    return dtype.kind == "u" and dtype.itemsize == itemsize


def describe(value) -> str:
    """``repr(value)`` (cut at 60 characters) and its type, for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} (type {type(value).__name__})"


def _bound(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_int(name: str, value, low: int, allowed=None, where: str = "") -> int:
    """An integer option >= ``low`` (and in ``allowed`` when given); bools and floats are refused.
    ``where`` (a function's name) prefixes the message."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{prefix}{name} must be an int >= {low}, got {describe(value)}")
    value = operator.index(value)
    if value < low:
        raise ValueError(f"{prefix}{name} must be an int >= {low}, got {value}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"{prefix}{name} must be one of {sorted(allowed)}, got {value}")
    return value


def check_float(name: str, value, low: float, inclusive: bool = True, where: str = "") -> float:
    """A finite real option >= ``low`` (> ``low`` when not ``inclusive``); bools are refused.
    ``where`` (a function's name) prefixes the message."""
    prefix = f"{where}: " if where else ""
    op = ">=" if inclusive else ">"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{prefix}{name} must be a real number {op} {_bound(low)}, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value) or value < low or (not inclusive and value == low):
        raise ValueError(f"{prefix}{name} must be a finite number {op} {_bound(low)}, got {value!r}")
    return value


#: The channel orders an image may come in: "rgb" (NumPy, PIL, torchvision, fastdefocus's own
#: readers) or "bgr" (OpenCV's ``cv2.imread`` and ``cv2.VideoCapture``).
CHANNEL_ORDERS = ("rgb", "bgr")


def check_channel_order(channel_order, name: str = "channel_order") -> str:
    """Validate a channel order: 'rgb' or 'bgr' (any case); returns it in lower case."""
    if isinstance(channel_order, str) and channel_order.lower() in CHANNEL_ORDERS:
        return channel_order.lower()
    raise ValueError(f"{name} must be 'rgb' or 'bgr' (OpenCV's order), got {describe(channel_order)}")


def to_rgb_order(arr: np.ndarray, channel_order: str) -> np.ndarray:
    """``arr`` (H, W, C) with its colour channels in RGB order: a view with the first three
    channels reversed for 'bgr' (BGR -> RGB, BGRA -> RGBA), ``arr`` itself for 'rgb' or images
    without three colour channels. The same function turns RGB back into BGR."""
    if channel_order == "rgb" or arr.ndim != 3 or arr.shape[2] < 3:
        return arr
    if arr.shape[2] == 3:
        return arr[..., ::-1]
    return arr[..., [2, 1, 0] + list(range(3, arr.shape[2]))]


class MissingExtraError(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that brings it
    (``pip install 'fastdefocus[EXTRA]'``)."""

    def __init__(self, what: str, extra: str, package: str):
        super().__init__(f"{what} needs {package}, which is not installed: pip install 'fastdefocus[{extra}]'",
                         name=package)
        self.extra = extra
