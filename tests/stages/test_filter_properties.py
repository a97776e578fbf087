"""Property-based tests of the public functions (hypothesis).

For random shapes, dtypes and values each function returns its documented
shape, dtype and range, or raises its documented exception (ValueError or
TypeError) -- never another exception and never a crash. Where the inputs are
simple to classify, the test also predicts which of the two must happen.
"""
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastdefocus
from fastdefocus import box_filter, extract_patches, guided_filter, iterative_guided_filter
from fastdefocus._validate import FLOAT_SLACK
from fastdefocus.stages.ingest import to_luminance

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)
DOCUMENTED = (ValueError, TypeError)

DTYPES = [np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.uint32, np.float16, np.float32,
          np.float64, np.bool_, np.complex64, ">u2", ">f4"]


def arrays(dtypes=DTYPES, min_dims=0, max_dims=4, max_side=6, elements=None):
    """Arrays of any of ``dtypes``, 0-D to 4-D, sides 0..max_side (so empty ones too),
    with hypothesis' adversarial values (NaN, inf, extremes) unless ``elements`` is given."""
    return hnp.arrays(dtype=st.sampled_from([np.dtype(d) for d in dtypes]),
                      shape=hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side),
                      elements=elements)


def image_is_valid(arr: np.ndarray) -> bool:
    """What ingest.check_image documents as a valid image."""
    if arr.dtype.kind not in "uif":
        return False
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and not 1 <= arr.shape[2] <= 4) or 0 in arr.shape[:2]:
        return False
    if arr.size == 0:
        return False  # (H, W, 0) already refused above; kept for clarity
    if arr.dtype.kind == "f":
        values = arr.astype(np.float64)
        return bool(np.isfinite(values).all() and values.min() >= -FLOAT_SLACK and values.max() <= 1 + FLOAT_SLACK)
    if arr.dtype.kind == "u" and arr.dtype.itemsize <= 2:
        return True
    return bool(arr.min() >= 0 and arr.max() <= 255)


@SETTINGS
@given(arrays())
def test_to_luminance_contract(arr):
    valid = image_is_valid(arr)
    try:
        lum = to_luminance(arr)
    except DOCUMENTED:
        assert not valid, f"refused a valid {arr.dtype} image of shape {arr.shape}"
        return
    assert valid, f"accepted an invalid {arr.dtype} array of shape {arr.shape}"
    assert lum.shape == arr.shape[:2] and lum.dtype == np.float32 and lum.flags.c_contiguous
    assert np.isfinite(lum).all() and lum.min() >= 0 and lum.max() <= 1


_ESTIMATOR = {}


def estimator():
    if not _ESTIMATOR:
        _ESTIMATOR["est"] = fastdefocus.DefocusEstimator(stride=16)
    return _ESTIMATOR["est"]


def _check_result(result, shape):
    assert result.sigma.shape == shape and result.sigma.dtype == np.float32
    assert result.confidence.shape == shape and result.confidence.dtype == np.float32
    assert np.isfinite(result.sigma).all() and np.isfinite(result.confidence).all()
    assert result.sigma.min() >= 0 and result.sigma.max() <= result.sigma_max
    assert result.confidence.min() >= 0 and result.confidence.max() <= 1


@st.composite
def valid_images(draw):
    h, w = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4]))
    shape = (h, w) if channels is None else (h, w, channels)
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    kind = draw(st.sampled_from(["noise", "constant", "extremes"]))
    rng = np.random.default_rng(seed)
    top = 1.0 if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    if kind == "noise":
        unit = rng.uniform(0, 1, shape)
    elif kind == "constant":
        unit = np.full(shape, rng.uniform(0, 1))
    else:
        unit = rng.integers(0, 2, shape).astype(np.float64)
    image = (unit * top).astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "reversed", "readonly"]))
    if layout == "F":
        image = np.asfortranarray(image)
    elif layout == "reversed":
        image = np.ascontiguousarray(image[::-1, ::-1])[::-1, ::-1]
    elif layout == "readonly":
        image.setflags(write=False)
    return image


@SETTINGS
@given(valid_images())
def test_estimate_valid_images(image):
    _check_result(estimator().estimate(image), image.shape[:2])


@SETTINGS
@given(arrays(max_side=40))
def test_estimate_any_array(arr):
    valid = image_is_valid(arr)
    try:
        result = estimator().estimate(arr)
    except DOCUMENTED:
        assert not valid, f"refused a valid {arr.dtype} image of shape {arr.shape}"
        return
    assert valid
    _check_result(result, arr.shape[:2])


JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                 st.lists(st.integers(), max_size=3), st.lists(st.lists(st.floats(), max_size=3), max_size=3),
                 st.just(object()), st.just(b"\x89PNG"), st.just({"image": 1}))


@SETTINGS
@given(JUNK)
def test_estimate_junk(value):
    try:
        result = estimator().estimate(value)
    except DOCUMENTED:
        return
    _check_result(result, np.asarray(value).shape[:2])


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=4))
def test_stream_sizes(sizes):
    frames = [np.full(s, 0.5, np.float32) for s in sizes]
    first_change = next((i for i, s in enumerate(sizes) if s != sizes[0]), None)
    results = []
    try:
        for result in estimator().stream(frames):
            results.append(result)
    except ValueError as e:
        assert first_change is not None and f"frame {first_change} has size" in str(e)
        assert len(results) == first_change
        return
    assert first_change is None and len(results) == len(frames)


# ------------------------------------------------------------------------------ filters

# image arguments of the filters: any real dtype, finite values (float32 after conversion)
FILTER_ARRAYS = arrays(dtypes=[np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_, np.complex64],
                       max_dims=3, max_side=12)
RADII = st.one_of(st.integers(-3, 40), st.floats(allow_nan=True), st.none(), st.just(True), st.just("2"))


def filter_image_is_valid(arr: np.ndarray) -> bool:
    """What filters._as_image documents: 2-D, non-empty, real (bool too), finite as float32."""
    if arr.dtype.kind not in "buif" or arr.ndim != 2 or arr.size == 0:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(arr.astype(np.float32)).all())


def radius_is_valid(radius) -> bool:
    return isinstance(radius, int) and not isinstance(radius, bool) and radius >= 0


@SETTINGS
@given(FILTER_ARRAYS, RADII)
def test_box_filter_contract(src, radius):
    valid = filter_image_is_valid(src) and radius_is_valid(radius)
    try:
        out = box_filter(src, radius)
    except DOCUMENTED:
        assert not valid, (src.dtype, src.shape, radius)
        return
    assert valid
    assert out.shape == src.shape and out.dtype == np.float32
    values = src.astype(np.float64)
    span = max(abs(values.max()), abs(values.min()), 1.0)
    # a mean lies within the range of what it averages
    assert out.min() >= values.min() - 1e-5 * span and out.max() <= values.max() + 1e-5 * span


@st.composite
def guided_arguments(draw):
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    finite = st.floats(-1e3, 1e3, width=32)
    src = draw(hnp.arrays(np.float32, (h, w), elements=finite))
    guide = draw(hnp.arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32)))
    weights = draw(st.one_of(st.none(), hnp.arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32))))
    return src, guide, weights, draw(st.integers(0, 30)), draw(st.floats(1e-6, 10.0)), draw(st.integers(1, 3))


@SETTINGS
@given(guided_arguments())
def test_guided_filters_on_valid_input(args):
    src, guide, weights, radius, eps, iterations = args
    out = guided_filter(guide, src, radius, eps, weights)
    assert out.shape == src.shape and out.dtype == np.float32 and np.isfinite(out).all()
    out = iterative_guided_filter(guide, src, radius, eps, weights, iterations)
    assert out.shape == src.shape and out.dtype == np.float32 and np.isfinite(out).all()
    if np.ptp(src) == 0:  # a constant stays constant
        assert np.allclose(out, src[0, 0], rtol=1e-4, atol=1e-4)


@SETTINGS
@given(FILTER_ARRAYS, FILTER_ARRAYS, RADII, st.one_of(st.floats(), st.integers(-1, 1), st.none()),
       st.one_of(st.none(), FILTER_ARRAYS), st.one_of(st.integers(-1, 3), st.floats(0, 3)))
def test_guided_filters_on_any_input(src, guide, radius, eps, weights, iterations):
    for call in (lambda: guided_filter(guide, src, radius, eps, weights),
                 lambda: iterative_guided_filter(guide, src, radius, eps, weights, iterations)):
        try:
            out = call()
        except DOCUMENTED:
            continue
        assert out.shape == src.shape and out.dtype == np.float32


@SETTINGS
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.floats(0, 1, width=32)),
       st.integers(1, 16), st.integers(1, 20), st.booleans())
def test_extract_patches_contract(gray, size, stride, normalize):
    patches, (ny, nx) = extract_patches(gray, size=size, stride=stride, normalize=normalize)
    h, w = gray.shape
    assert ny == math.ceil(max(h - size, 0) / stride) + 1 and nx == math.ceil(max(w - size, 0) / stride) + 1
    assert patches.shape == (ny * nx, size, size) and patches.dtype == np.float32
    assert patches.flags.c_contiguous and np.isfinite(patches).all()
    if not normalize and stride <= size:  # the part of the first and last patch inside the image is the image
        y0, x0 = (ny - 1) * stride, (nx - 1) * stride
        assert np.array_equal(patches[0][:h, :w], gray[:size, :size])
        assert np.array_equal(patches[-1][:h - y0, :w - x0], gray[y0:y0 + size, x0:x0 + size])


@SETTINGS
@given(FILTER_ARRAYS, st.one_of(st.integers(-2, 40), st.floats(), st.none()),
       st.one_of(st.integers(-2, 40), st.floats(), st.none()), st.one_of(st.booleans(), st.integers(0, 1)),
       st.one_of(st.floats(), st.integers(-1, 1)))
def test_extract_patches_on_any_input(gray, size, stride, normalize, std_floor):
    try:
        patches, (ny, nx) = extract_patches(gray, size=size, stride=stride, normalize=normalize,
                                            std_floor=std_floor)
    except DOCUMENTED:
        return
    assert patches.shape == (ny * nx, size, size) and patches.dtype == np.float32
