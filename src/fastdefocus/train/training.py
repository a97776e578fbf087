"""Training data and training of the blur-level classifier.

Everything here is deterministic from a seed. Patches are generated once and
cached on disk as uint8 memmaps (outside the repository), then read at every
epoch; flips and 90-degree rotations are applied on the fly.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from fastdefocus._params import STRIDED_CNN_LAYERS
from fastdefocus.blur import DEFAULT_LEVELS, disc_blur, gaussian_blur, level_bins, level_position
from fastdefocus.train.camera import LUMA, PSF_NAMES, CameraConfig, psf_kernel, psf_margin, render
from fastdefocus.stages.classify import expected_sigma_raw
from fastdefocus.scenes import dead_leaves

PATCH = 32
#: Each split is generated in this many shards, each seeded by (seed, shard, split), whatever
#: the number of worker processes: the data depend on the seed alone.
GENERATOR_SHARDS = 8
#: A sharp patch whose contrast-scaled standard deviation (intensity in [0, 1]) is
#: below this carries almost no blur information ("flat").
FLAT_STD = 0.02
IDEAL_KINDS = ("gaussian", "disc", "mixed")


def data_root() -> Path:
    """The shared data folder: ``$FASTDEFOCUS_DATA``, else ``../shared/data`` from here."""
    env = os.environ.get("FASTDEFOCUS_DATA")
    candidates = [Path(env)] if env else [Path.cwd() / ".." / "shared" / "data", Path.cwd() / "shared" / "data"]
    for c in candidates:
        if (c / "train").is_dir():
            return c.resolve()
    raise FileNotFoundError(
        "training data not found: set FASTDEFOCUS_DATA to the folder that holds train/ "
        f"(looked in {', '.join(str(c) for c in candidates)})")


def photo_sources(root: Path) -> list[Path]:
    """Sharp photos for training: BSDS500 train and the SR test sets. BSDS500 val is
    left out entirely: the estimator is evaluated on scenes made from it."""
    exts = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
    files = [p for p in sorted((root / "train").rglob("*"))
             if p.suffix.lower() in exts and "bsds500/val" not in p.as_posix()]
    return files


#: Sharp photo sources are downscaled by this factor with area averaging, so that their own
#: lens blur and JPEG softness fall below the first level. By 2 they did not: a classifier
#: trained that way read level-0 patches cut from held-out photos +0.34 px high and those
#: from dead-leaves images +0.03 px (their labels disagreed by the photos' own blur).
SOURCE_DOWNSCALE = 4
#: Dead-leaves sources are rendered this many times finer and area-averaged down, so that
#: their pixels integrate their area like the photos' (and a camera's) pixels do.
LEAVES_SUPERSAMPLE = 4


def load_gray_source(path: Path, factor: int = SOURCE_DOWNSCALE) -> np.ndarray:
    """Grayscale in [0, 1], downscaled by ``factor`` with area averaging (hides the photo's own
    softness)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read image {path}")
    h, w = img.shape
    return cv2.resize(img, (max(1, w // factor), max(1, h // factor)),
                      interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def load_source(path: Path, factor: int = SOURCE_DOWNSCALE) -> np.ndarray:
    """A sharp photo as sRGB float32 (H, W, 3) in [0, 1], downscaled by ``factor`` with area
    averaging (hides the photo's own softness)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    h, w = img.shape[:2]
    img = cv2.resize(img, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[..., ::-1]).astype(np.float32) / 255.0


@dataclass(frozen=True)
class GeneratorConfig:
    levels: tuple = tuple(DEFAULT_LEVELS)
    #: the ideal-lens generator (camera None): blur kinds gaussian / disc / mixed
    kind_probs: tuple = (0.6, 0.2, 0.2)
    noise_stds: tuple = (0.0, 0.0, 0.002, 0.005, 0.01, 0.02)
    jpeg_prob: float = 0.5
    dead_leaves_prob: float = 0.35
    #: scene contrast (both generators)
    contrast: tuple = (0.35, 1.1)
    #: the camera degradation model (:mod:`fastdefocus.train.camera`; ``fastdefocus train
    #: --camera``); None: an ideal lens on area-integrating pixels with contrast, gamma, noise and
    #: JPEG, the generator the shipped weights were trained on. Fine-tuned on the camera model for
    #: 5 epochs the classifier read sharp photos lower (0.326 -> 0.279 px) but lost on every other
    #: measure (layered scenes, SYNDOF, CUHK, held-out ideal patches), so it is not the default
    #: (issue "Real photographs I").
    camera: CameraConfig | None = None

    @property
    def kind_names(self) -> tuple:
        return PSF_NAMES if self.camera is not None else IDEAL_KINDS


def blur_crop(crop: np.ndarray, sigma: float, kind: int, rng: np.random.Generator) -> np.ndarray:
    """Blur a crop with a kernel of equivalent Gaussian sigma ``sigma``."""
    if sigma <= 0:
        return crop.copy()
    if kind == 0 or 2 * sigma < 1.0:  # a disc under 1 px radius is not resolvable: Gaussian
        return gaussian_blur(crop, sigma)
    if kind == 1:
        return disc_blur(crop, sigma)
    # mixed: Gaussian then disc; variances add under convolution
    frac = rng.uniform(0.2, 0.8)
    sg, sd = sigma * math.sqrt(frac), sigma * math.sqrt(1 - frac)
    if 2 * sd < 1.0:
        sg, sd = sigma, 0.0
    out = gaussian_blur(crop, sg)
    return out if sd == 0.0 else disc_blur(out, sd)


def crop_margin(sigma: float) -> int:
    """Pixels blurred around a Gaussian-blurred patch before it is cut out: beyond 3 sigma + 3 px
    a Gaussian's weight is under 0.3%, and a disc of equivalent sigma has radius 2 sigma."""
    return int(math.ceil(3 * sigma)) + 3


#: Largest crop a patch needs, in source pixels at SOURCE_DOWNSCALE: every photo must hold it.
def largest_crop(levels) -> int:
    return PATCH + 2 * crop_margin(float(level_bins(np.asarray(levels))[-1]))


def make_camera_patch(sources: tuple, level: int, cfg: GeneratorConfig, bins: np.ndarray,
                      rng: np.random.Generator) -> tuple[np.ndarray, float, int, float]:
    """One training patch of the camera generator: (uint8 32x32, sigma, PSF shape index, texture).

    ``sources`` is the sharp sRGB source at the training scale and, or None, the same source at
    twice that resolution (a photo the user downscaled by 2 after the camera). The label is
    the lens blur sigma at the training scale; the camera of :mod:`camera` acts after the lens.
    """
    lo, hi = bins[level], bins[level + 1]
    sigma = rng.uniform(lo, hi) if level == 0 else math.exp(rng.uniform(math.log(lo), math.log(hi)))
    cam = cfg.camera
    psf = int(rng.choice(len(PSF_NAMES), p=cam.psf_probs))
    scale = 2 if sources[1] is not None and rng.uniform() < cam.downscale_prob else 1
    source = sources[scale - 1]
    kernel = psf_kernel(PSF_NAMES[psf], sigma * scale, rng)
    h, w = source.shape[:2]
    # the kernel's full reach where the source holds it; at the top of the range on the smallest
    # sources, at least the Gaussian's 3 sigma + 3 px (the rest of the reach is reflected)
    margin = min(psf_margin(sigma * scale, kernel),
                 max(crop_margin(sigma * scale), (min(h, w) - PATCH * scale) // 2))
    margin += margin % scale
    size = PATCH * scale + 2 * margin
    if h < size or w < size:
        if scale == 2:  # this source is too small at twice the scale: render it at the training scale
            return make_camera_patch((sources[0], None), level, cfg, bins, rng)
        raise ValueError(f"source of {w}x{h} px is smaller than the {size}-px crop sigma {sigma:.2f} needs")
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    crop = source[y:y + size, x:x + size]
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    contrast = rng.uniform(*cfg.contrast)
    mean = float(crop.mean())
    crop = np.clip(mean + contrast * (crop - mean) + rng.uniform(-0.1, 0.1), 0.0, 1.0).astype(np.float32)
    luma = crop @ np.asarray(LUMA, np.float32)
    texture = float(luma[margin:margin + PATCH * scale, margin:margin + PATCH * scale].std())
    lum8 = render(crop, sigma * scale, kernel, cam, rng)
    if scale > 1:
        lum8 = cv2.resize(lum8.astype(np.float32), (size // scale, size // scale), interpolation=cv2.INTER_AREA)
        lum8 = np.clip(lum8 + 0.5, 0, 255).astype(np.uint8)
        margin //= scale
    return np.ascontiguousarray(lum8[margin:margin + PATCH, margin:margin + PATCH]), sigma, psf, texture


def make_ideal_patch(source: np.ndarray, level: int, cfg: GeneratorConfig, bins: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, float, int, float]:
    """One training patch of the ideal-lens generator (``cfg.camera`` None; the shipped weights were trained on these): (uint8 32x32, sigma, kind, texture) from a sharp grayscale source."""
    lo, hi = bins[level], bins[level + 1]
    sigma = rng.uniform(lo, hi) if level == 0 else math.exp(rng.uniform(math.log(lo), math.log(hi)))
    kind = int(rng.choice(3, p=cfg.kind_probs))
    margin = crop_margin(sigma)
    size = PATCH + 2 * margin
    h, w = source.shape
    if h < size or w < size:
        raise ValueError(f"source of {w}x{h} px is smaller than the {size}-px crop sigma {sigma:.2f} needs")
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    crop = np.ascontiguousarray(source[y:y + size, x:x + size])
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1].copy()
    blurred = blur_crop(crop, sigma, kind, rng)
    # camera: contrast, gamma, noise, quantisation, JPEG -- after the blur
    contrast = rng.uniform(0.35, 1.1)
    mean = float(blurred.mean())
    out = mean + contrast * (blurred - mean) + rng.uniform(-0.1, 0.1)
    out = np.clip(out, 0, 1) ** rng.uniform(0.75, 1.35)
    noise = cfg.noise_stds[int(rng.integers(len(cfg.noise_stds)))]
    if noise > 0:
        out = out + rng.normal(0, noise, out.shape).astype(np.float32)
    out8 = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    if rng.uniform() < cfg.jpeg_prob:
        ok, buf = cv2.imencode(".jpg", out8, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 96))])
        out8 = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    texture = contrast * float(crop[margin:margin + PATCH, margin:margin + PATCH].std())
    return out8[margin:margin + PATCH, margin:margin + PATCH], sigma, kind, texture


def make_patch(source, level: int, cfg: GeneratorConfig, bins: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, float, int, float]:
    """One training patch (uint8 32x32, sigma, kind index, texture) of the generator ``cfg``
    chooses: the ideal lens from a grayscale source, or the camera model from (colour source,
    colour source at twice the scale or None)."""
    if cfg.camera is None:
        return make_ideal_patch(source, level, cfg, bins, rng)
    return make_camera_patch(source, level, cfg, bins, rng)


def _generate_shard(args) -> dict:
    (out_dir, split, shard, start, count, seed, photo_paths, n_leaves, keep_flat, camera) = args
    cfg = GeneratorConfig(camera=camera)
    levels = np.asarray(cfg.levels)
    bins = level_bins(levels)
    rng = np.random.default_rng([seed, shard, 0 if split == "train" else 1])
    leaves_rng = np.random.default_rng([seed, 7, 0 if split == "train" else 1, shard])
    if camera is not None:
        photos = [(load_source(Path(p)), load_source(Path(p), SOURCE_DOWNSCALE // 2)) for p in photo_paths]
        leaves = [(dead_leaves(leaves_rng, colour=True, supersample=LEAVES_SUPERSAMPLE), None)
                  for _ in range(n_leaves)]
    else:
        photos = [load_gray_source(Path(p)) for p in photo_paths]
        leaves = [dead_leaves(leaves_rng, supersample=LEAVES_SUPERSAMPLE) for _ in range(n_leaves)]
    n_src = len(photos) + len(leaves)
    patches = np.lib.format.open_memmap(out_dir / f"{split}_patches.npy", mode="r+")
    meta = np.lib.format.open_memmap(out_dir / f"{split}_meta.npy", mode="r+")
    i = 0
    while i < count:
        level = int(rng.integers(len(levels)))
        if rng.uniform() < cfg.dead_leaves_prob:
            src_id = len(photos) + int(rng.integers(len(leaves)))
        else:
            src_id = int(rng.integers(len(photos)))
        src = photos[src_id] if src_id < len(photos) else leaves[src_id - len(photos)]
        patch, sigma, kind, texture = make_patch(src, level, cfg, bins, rng)
        flat = texture < FLAT_STD
        if flat and not keep_flat:
            continue
        patches[start + i] = patch
        meta[start + i] = (level, sigma, kind, texture, src_id, flat)
        i += 1
    patches.flush()
    meta.flush()
    return {"shard": shard, "count": count, "sources": n_src}


META_DTYPE = np.dtype([("level", "u1"), ("sigma", "f4"), ("kind", "u1"), ("texture", "f4"),
                       ("source", "i4"), ("flat", "?")])


def generate_dataset(out_dir: Path, n_train: int = 600_000, n_val: int = 30_000, seed: int = 0,
                     val_fraction: float = 0.12, workers: int = 2, log=print,
                     camera: bool | CameraConfig = False) -> dict:
    """Generate the train and validation patch sets (uint8 memmaps) into ``out_dir``, with the
    ideal-lens generator or, with ``camera`` (True: the default :class:`CameraConfig`, or a
    config of its own), the camera model (:class:`GeneratorConfig`).

    The validation set is cut by source: its photos and dead-leaves images never
    appear in training, and the same seed gives the same validation sources whatever
    the generator. Flat patches are kept out of training and kept (marked) in
    validation, so that they are measured separately. ``n_train`` may be 0 (a
    validation set alone, as the calibration set of :mod:`fastdefocus.train.recalibrate`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    camera_cfg = CameraConfig() if camera is True else (camera or None)
    camera_summary = json.loads(json.dumps(dataclasses.asdict(camera_cfg))) if camera_cfg is not None else None
    summary_path = out_dir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if (summary.get("n_train") == n_train and summary.get("n_val") == n_val and summary.get("seed") == seed
                and summary.get("camera") == camera_summary):
            log(f"using cached patches in {out_dir}")
            return summary
    root = data_root()
    summary_path.unlink(missing_ok=True)  # a rebuild cut short must not leave a summary that matches
    cfg = GeneratorConfig(camera=camera_cfg)
    largest = largest_crop(cfg.levels)
    photos, too_small = [], []
    for p in photo_sources(root):  # every photo must hold the crop of the largest sigma
        (photos if min(load_source(p).shape[:2]) >= largest else too_small).append(p)
    if too_small:
        log(f"{len(too_small)} photos are smaller than {largest} px once downscaled by {SOURCE_DOWNSCALE}; "
            f"not used: {', '.join(p.name for p in too_small)}")
    if len(photos) < 2:
        raise ValueError(f"generate_dataset needs at least 2 photos of at least {largest * SOURCE_DOWNSCALE} px "
                         f"on their short side (one for training, one for validation), found {len(photos)} "
                         f"under {root / 'train'}")
    perm = np.random.default_rng(seed).permutation(len(photos))
    n_val_photos = max(1, int(round(val_fraction * len(photos))))
    val_photos = [str(photos[i]) for i in sorted(perm[:n_val_photos])]
    train_photos = [str(photos[i]) for i in sorted(perm[n_val_photos:])]
    t0 = time.time()
    jobs = []
    for split, n, paths, n_leaves, keep_flat in (("train", n_train, train_photos, 240, False),
                                                 ("val", n_val, val_photos, 40, True)):
        np.lib.format.open_memmap(out_dir / f"{split}_patches.npy", mode="w+", dtype=np.uint8,
                                  shape=(n, PATCH, PATCH))
        np.lib.format.open_memmap(out_dir / f"{split}_meta.npy", mode="w+", dtype=META_DTYPE, shape=(n,))
        n_shards = GENERATOR_SHARDS
        per = int(math.ceil(n / n_shards))
        for s in range(n_shards):
            start = s * per
            count = min(per, n - start)
            if count > 0:
                jobs.append((out_dir, split, s, start, count, seed, paths, n_leaves // n_shards + 1, keep_flat,
                             camera_cfg))
    with get_context("spawn").Pool(workers) as pool:
        for res in pool.imap_unordered(_generate_shard, jobs):
            log(f"shard done: {res} ({time.time() - t0:.0f} s)")
    summary = {
        "n_train": n_train, "n_val": n_val, "seed": seed, "patch": PATCH,
        "levels": list(cfg.levels), "flat_std": FLAT_STD,
        "train_photos": len(train_photos), "val_photos": len(val_photos),
        "val_photo_names": [Path(p).name for p in val_photos],
        "kinds": dict(zip(cfg.kind_names, camera_cfg.psf_probs if camera_cfg else cfg.kind_probs)),
        "camera": camera_summary, "contrast": list(cfg.contrast),
        "dead_leaves_prob": cfg.dead_leaves_prob,
        **({} if camera_cfg else {"noise_stds": list(cfg.noise_stds), "jpeg_prob": cfg.jpeg_prob}),
        "source_downscale": SOURCE_DOWNSCALE, "leaves_supersample": LEAVES_SUPERSAMPLE,
        "seconds": round(time.time() - t0, 1),
    }
    partial = summary_path.with_name(summary_path.name + ".tmp")
    partial.write_text(json.dumps(summary, indent=1))
    os.replace(partial, summary_path)  # written last: the cache is complete once it exists
    return summary


# --------------------------------------------------------------------------- training

def normalize_batch(x, std_floor: float):
    """Per-patch normalisation, the same as ``extract_patches(normalize=True)``:
    (p - mean) / max(std, std_floor), population std, intensities in [0, 1]."""
    import torch
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.var(dim=(-2, -1), keepdim=True, unbiased=False).sqrt()
    return (x - mean) / torch.clamp(std, min=std_floor)


def normalize_u8(patches_u8, std_floor: float) -> np.ndarray:
    """The NumPy twin of :func:`normalize_batch` for uint8 patches (N, P, P): float32, intensities
    in [0, 1], (p - mean) / max(std, std_floor), population std."""
    x = np.asarray(patches_u8).astype(np.float32) / 255.0
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = x.std(axis=(1, 2), keepdims=True)
    return ((x - mean) / np.maximum(std, std_floor)).astype(np.float32)


def random_dihedral(x):
    """Each patch gets one of the 8 flips/90-degree rotations, drawn at random."""
    import torch
    code = torch.randint(0, 8, (x.shape[0],))
    out = x.clone()
    for c in range(8):
        sel = code == c
        if sel.any():
            y = torch.rot90(x[sel], c % 4, dims=(-2, -1))
            out[sel] = torch.flip(y, dims=(-1,)) if c >= 4 else y
    return out


def soft_targets(position, num_classes: int, tau: float):
    """Ordinal soft labels: a Gaussian over level indices centred on the patch's
    continuous level position, so a neighbour level is a small error."""
    import torch
    k = torch.arange(num_classes, dtype=torch.float32, device=position.device)
    logits = -((k[None, :] - position[:, None]) ** 2) / (2 * tau * tau)
    return torch.softmax(logits, dim=1)


@dataclass
class TrainConfig:
    epochs: int = 12
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 4e-5
    width_mult: float = 0.5
    label_tau: float = 0.6
    position_weight: float = 0.1
    std_floor: float = 0.02
    seed: int = 0
    threads: int = 0  # 0: all cores
    #: start from these weights (a .safetensors file of the same architecture) instead of a
    #: random initialisation: fine-tuning on new data at a fraction of the cost of a full run
    init: str = ""
    #: a second patch cache (e.g. the camera model's, ``fastdefocus train --camera``) mixed into
    #: training: each epoch draws ``mix_share`` of its patches from it and the rest from the
    #: main cache, as many patches as the main cache holds (the same cost as training on it alone)
    mix_cache: str = ""
    mix_share: float = 0.5
    #: the network (:data:`fastdefocus.backends.networks.ARCHITECTURES`): the paper's MobileNetV2
    #: (``width_mult``) or the fast model's StridedCNN (``layers``: (channels, stride) per
    #: convolution, ``stem_kernel``, ``head_channels``)
    arch: str = "MobileNetV2"
    layers: tuple = STRIDED_CNN_LAYERS
    stem_kernel: int = 3
    head_channels: int = 0
    #: distil from this model (a weights folder, e.g. src/fastdefocus/weights): the loss is
    #: ``(1 - distill) x`` the label loss ``+ distill x`` the cross-entropy with the teacher's
    #: probabilities of the same (unaugmented) patch, computed once with ONNX Runtime
    teacher: str = ""
    distill: float = 0.5


def network_spec(cfg: dict | TrainConfig, num_classes: int) -> dict:
    """The ``architecture`` entry of the network a training config builds (a checkpoint's config
    from before networks could be chosen is a MobileNetV2)."""
    from fastdefocus.backends.networks import architecture_spec
    c = cfg if isinstance(cfg, dict) else cfg.__dict__
    return architecture_spec(c.get("arch", "MobileNetV2"), num_classes,
                             width_mult=c.get("width_mult", TrainConfig.width_mult),
                             layers=c.get("layers", TrainConfig.layers),
                             stem_kernel=c.get("stem_kernel", TrainConfig.stem_kernel),
                             head_channels=c.get("head_channels", TrainConfig.head_channels))


def teacher_probabilities(weights_dir: str | Path, patches_u8: np.ndarray, std_floor: float,
                          batch: int = 4096) -> np.ndarray:
    """A shipped-format model's probabilities (N, L) float16 of uint8 patches (N, P, P), through
    ONNX Runtime: the soft targets of a distillation."""
    from fastdefocus.backends.cpu import PatchClassifier
    from fastdefocus.stages.classify import load_model_info
    clf = PatchClassifier(load_model_info(weights_dir), backend="onnxruntime", batch_size=batch)
    out = np.empty((len(patches_u8), len(clf.info.levels)), np.float16)
    for i in range(0, len(patches_u8), batch):
        out[i:i + batch] = clf.probabilities(normalize_u8(patches_u8[i:i + batch], std_floor))
    return out


def epoch_order(n_main: int, n_mix: int, share: float, seed: int, epoch: int) -> np.ndarray:
    """Indices into the main cache's patches followed by the mixed cache's (``n_main + i``) for one
    epoch: ``n_main`` of them, ``round(share * n_main)`` from the mixed cache (without repeats),
    shuffled; with no mixed cache (``n_mix`` 0), a permutation of the main cache."""
    rng = np.random.default_rng([seed, epoch])
    if n_mix == 0:
        return rng.permutation(n_main)
    k = min(int(round(share * n_main)), n_mix)
    main = rng.choice(n_main, n_main - k, replace=False)
    mix = n_main + rng.choice(n_mix, k, replace=False)
    return rng.permutation(np.concatenate([main, mix]))


#: the settings a resumed run must share with its checkpoint (others, e.g. epochs, may change)
RESUME_FIXED = ("arch", "width_mult", "layers", "stem_kernel", "head_channels", "teacher", "distill")


def check_resume(saved: dict, cfg: TrainConfig, ckpt_path: Path) -> None:
    """Refuse to resume a checkpoint made with another network or another distillation (a
    checkpoint from before these settings existed was a MobileNetV2 trained on labels alone)."""
    defaults = {"arch": "MobileNetV2", "teacher": "", "distill": TrainConfig.distill}
    now = network_spec(cfg, 1), cfg.teacher, cfg.distill if cfg.teacher else None
    then_cfg = {**defaults, **saved}
    then = network_spec(then_cfg, 1), then_cfg["teacher"], then_cfg["distill"] if then_cfg["teacher"] else None
    if now != then:
        diff = [f"{k} {then_cfg.get(k)!r} -> {getattr(cfg, k)!r}" for k in RESUME_FIXED
                if k in then_cfg and then_cfg.get(k) != getattr(cfg, k)]
        raise ValueError(f"{ckpt_path} was trained with other settings ({'; '.join(diff)}): resume with the "
                         "same network and teacher, or give a new --run folder")


def training_loss(logits, position, cfg: TrainConfig, teacher=None):
    """The loss of a batch: cross-entropy against ordinal soft labels (a Gaussian of width
    ``label_tau`` levels around each patch's level position) plus ``position_weight`` x the
    absolute error of the expected level position; with the teacher's probabilities (N, L),
    ``(1 - distill) x`` that ``+ distill x`` the cross-entropy with them."""
    import torch
    import torch.nn.functional as F
    logp = F.log_softmax(logits, dim=1)
    k = torch.arange(logits.shape[1], dtype=logp.dtype, device=logp.device)
    target = soft_targets(position, logits.shape[1], cfg.label_tau)
    expected = (logp.exp() * k).sum(1)
    loss = -(target * logp).sum(1).mean() + cfg.position_weight * (expected - position).abs().mean()
    if teacher is None:
        return loss
    return (1.0 - cfg.distill) * loss + cfg.distill * -(teacher * logp).sum(1).mean()


def train(cache_dir: Path, run_dir: Path, cfg: TrainConfig, log=print) -> Path:
    """Train (or resume) the classifier on cached patches; returns the final checkpoint."""
    import torch

    from fastdefocus.backends.networks import build_network

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    summary = json.loads((Path(cache_dir) / "summary.json").read_text())
    levels = np.asarray(summary["levels"])
    patches = np.load(Path(cache_dir) / "train_patches.npy")
    meta = np.load(Path(cache_dir) / "train_meta.npy")
    n = len(patches)
    n_mix = 0
    if cfg.mix_cache:
        if not 0.0 < cfg.mix_share < 1.0:
            raise ValueError(f"mix_share (--mix-share) must be in (0, 1), got {cfg.mix_share}")
        mix_summary = json.loads((Path(cfg.mix_cache) / "summary.json").read_text())
        if list(mix_summary["levels"]) != list(summary["levels"]):
            raise ValueError(f"the mixed cache {cfg.mix_cache} has the levels {mix_summary['levels']}, "
                             f"the main cache {cache_dir} has {summary['levels']}: they must be the same")
        mix_patches = np.load(Path(cfg.mix_cache) / "train_patches.npy")
        mix_meta = np.load(Path(cfg.mix_cache) / "train_meta.npy")
        n_mix = len(mix_patches)
        if n_mix == 0:
            raise ValueError(f"the mixed cache {cfg.mix_cache} holds no training patches (a validation set "
                             "alone?); give a cache made by fastdefocus train")
        patches = np.concatenate([patches, mix_patches])
        meta = np.concatenate([meta, mix_meta])
        share = min(int(round(cfg.mix_share * n)), n_mix) / n
        log(f"mixing {share:.1%} of each epoch from {cfg.mix_cache} ({n_mix} patches; asked {cfg.mix_share:.1%})")
    positions = torch.from_numpy(level_position(meta["sigma"], levels).astype(np.float32))
    steps_per_epoch = n // cfg.batch_size
    total_steps = steps_per_epoch * cfg.epochs
    soft = None
    if cfg.teacher:
        if not 0.0 < cfg.distill <= 1.0:
            raise ValueError(f"distill (--distill) must be in (0, 1], got {cfg.distill}")
        from fastdefocus.stages.classify import load_model_info
        teacher = load_model_info(cfg.teacher)
        if list(teacher.levels) != list(levels):
            raise ValueError(f"the teacher {cfg.teacher} has the levels {teacher.levels.tolist()}, the cache "
                             f"{cache_dir} has {levels.tolist()}: they must be the same")
        # the cached soft targets are those of this teacher on these patches, or they are made again
        key = {"teacher_onnx_sha256": teacher.metadata["files"]["onnx"]["sha256"],
               "teacher_std_floor": teacher.std_floor, "cache": str(Path(cache_dir).resolve()),
               "cache_summary": summary, "mix_cache": str(Path(cfg.mix_cache).resolve()) if cfg.mix_cache else "",
               "patches": int(len(patches))}
        soft_path, key_path = run_dir / "teacher_probs.npy", run_dir / "teacher_probs.json"
        if soft_path.exists() and key_path.exists() and json.loads(key_path.read_text()) == key:
            soft_np = np.load(soft_path)
        else:
            t0 = time.time()
            soft_np = teacher_probabilities(cfg.teacher, patches, teacher.std_floor)
            key_path.unlink(missing_ok=True)
            tmp = run_dir / "teacher_probs.tmp.npy"
            np.save(tmp, soft_np)
            os.replace(tmp, soft_path)
            key_path.write_text(json.dumps(key))  # written last: a cut-short run leaves no key
            log(f"teacher {cfg.teacher}: probabilities of {len(patches)} patches in {time.time() - t0:.0f} s")
        soft = torch.from_numpy(soft_np)

    model = build_network(network_spec(cfg, len(levels))).to(device)
    if cfg.init:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(cfg.init))
        log(f"initialised from {cfg.init}")
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps,
                                                pct_start=0.15, div_factor=20, final_div_factor=200)
    ckpt_path = run_dir / "checkpoint.pt"
    start_epoch = 0
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        check_resume(state["config"], cfg, ckpt_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start_epoch = int(state["epoch"])
        same_schedule = (int(state["config"]["epochs"]) == cfg.epochs
                         and int(state["config"].get("batch_size", cfg.batch_size)) == cfg.batch_size)
        if same_schedule:
            sched.load_state_dict(state["sched"])
        else:  # a new length or batch size: continue on the new schedule from the epochs already done
            with warnings.catch_warnings():  # replaying the steps, not skipping an optimizer step
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(start_epoch * steps_per_epoch):
                    sched.step()
            log(f"schedule changed from {state['config']['epochs']} epochs of batch "
                f"{state['config'].get('batch_size')} to {cfg.epochs} of {cfg.batch_size}; "
                f"learning rate now {sched.get_last_lr()[0]:.2e}")
        if "torch_rng" in state:  # the augmentation draws continue where they stopped
            torch.set_rng_state(state["torch_rng"].cpu())
        log(f"resumed from {ckpt_path} at epoch {start_epoch}")
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0 = time.time()
        order = torch.from_numpy(epoch_order(n, n_mix, cfg.mix_share, cfg.seed, epoch))
        loss_sum, correct = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            rows = np.sort(idx.numpy())
            x = torch.from_numpy(patches[rows]).float().div_(255.0)
            pos = positions[rows]
            x = normalize_batch(random_dihedral(x), cfg.std_floor).unsqueeze(1)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            pos = pos.to(device)
            logits = model(x)
            # the teacher is invariant to the dihedral draw, up to its own error
            loss = training_loss(logits, pos, cfg, None if soft is None else soft[rows].to(device).float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
            correct += int((logits.argmax(1) == pos.round().long()).sum())
            if step % 500 == 0:
                log(f"epoch {epoch + 1} step {step}/{steps_per_epoch} loss {loss_sum / (step + 1):.4f} "
                    f"{(step + 1) * cfg.batch_size / (time.time() - t0):.0f} patches/s")
        val = evaluate_checkpoint_model(model, cache_dir, levels, cfg.std_floor, device)
        record = {"epoch": epoch + 1, "loss": loss_sum / steps_per_epoch,
                  "train_top1": correct / (steps_per_epoch * cfg.batch_size),
                  "seconds": round(time.time() - t0, 1), **val}
        log(json.dumps(record))
        with open(run_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        tmp = run_dir / "checkpoint.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch + 1, "config": cfg.__dict__, "levels": levels.tolist(),
                    "torch_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, ckpt_path)
    return ckpt_path


def predict_probs(model, patches_u8: np.ndarray, std_floor: float, device=None, batch: int = 2048) -> np.ndarray:
    """Class probabilities for uint8 (N, 32, 32) patches with a torch model."""
    import torch
    model.eval()
    device = device or next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(patches_u8), batch):
            x = torch.from_numpy(np.ascontiguousarray(patches_u8[i:i + batch])).float().div_(255.0)
            x = normalize_batch(x, std_floor).unsqueeze(1).to(device).contiguous(memory_format=torch.channels_last)
            out.append(torch.softmax(model(x), dim=1).cpu().numpy())
    return np.concatenate(out)


def evaluate_checkpoint_model(model, cache_dir: Path, levels: np.ndarray, std_floor: float, device) -> dict:
    """Quick held-out numbers for the epoch log (textured validation patches)."""
    patches = np.load(Path(cache_dir) / "val_patches.npy", mmap_mode="r")
    meta = np.load(Path(cache_dir) / "val_meta.npy")
    textured = ~meta["flat"]
    probs = predict_probs(model, np.asarray(patches[textured]), std_floor, device)
    label = meta["level"][textured].astype(int)
    pred = probs.argmax(1)
    expected = expected_sigma_raw(probs, levels)
    return {"val_top1": float((pred == label).mean()),
            "val_within1": float((np.abs(pred - label) <= 1).mean()),
            "val_mae_px": float(np.abs(expected - meta["sigma"][textured]).mean())}


# --------------------------------------------------------------------------- calibration, export, card

def pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted isotonic (non-decreasing) regression of a sequence."""
    blocks = []  # [mean, weight, count]
    for v, w in zip(values.astype(float), weights.astype(float)):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(c, v) for v, _, c in blocks])


#: Fewest patches a calibration is fitted on (a few per bin, so no bin is empty).
MIN_CALIBRATION_SAMPLES = 16


def fit_calibration(raw: np.ndarray, sigma: np.ndarray, levels: np.ndarray, bins: int = 48,
                    method: str = "quantile") -> np.ndarray:
    """Monotone piecewise-linear knots mapping the raw expected sigma to sigma.

    ``quantile`` (the default): the k-th quantile of the raw estimate maps to the k-th
    quantile of the true sigma (``bins`` * 4 + 1 quantiles), so the estimates are spread like
    the truth: a regression to the mean would read the ends of the range towards the middle.
    On the 10-epoch model's held-out patches it keeps every level up to 5 px within 0.11 px
    of unbiased (MAE 0.226 px) where ``isotonic`` (E[sigma | raw], the least-squares
    monotone fit over ``bins`` quantile bins) left level 16 at +0.17 px (MAE 0.220 px).
    """
    if len(raw) < MIN_CALIBRATION_SAMPLES:
        raise ValueError(f"calibration needs at least {MIN_CALIBRATION_SAMPLES} textured validation patches "
                         f"from even-id sources, got {len(raw)}: generate more validation patches "
                         "(fastdefocus train --val-patches, recalibrate --patches)")
    if method == "quantile":
        q = np.linspace(0.0, 1.0, 4 * bins + 1)
        x, y = np.quantile(raw, q), np.quantile(sigma, q)
    elif method == "isotonic":
        bins = max(2, min(bins, len(raw) // 4))  # at least 4 patches a bin: no empty bins
        order = np.argsort(raw, kind="stable")
        groups = np.array_split(order, bins)
        x = np.array([raw[g].mean() for g in groups])
        y = pool_adjacent_violators(np.array([sigma[g].mean() for g in groups]), np.array([len(g) for g in groups]))
    else:
        raise ValueError(f"method must be 'quantile' or 'isotonic', got {method!r}")
    # strictly increasing knots; anchored at 0 and at the top of the range
    xs, ys = [0.0], [0.0]
    for xi, yi in zip(x, y):
        if xi > xs[-1] + 1e-4:
            xs.append(float(xi))
            ys.append(max(float(yi), ys[-1] + 1e-4))
    top = float(level_bins(levels)[-1])
    if xs[-1] < levels[-1]:
        xs.append(float(levels[-1]))
        ys.append(max(top, ys[-1] + 1e-4))
    return np.stack([xs, ys], axis=1)


def level_table(levels, level, sigma, raw, calibrated, pred) -> list[dict]:
    rows = []
    for k in list(range(len(levels))) + [None]:
        sel = np.ones(len(level), bool) if k is None else level == k
        if sel.sum() == 0:
            continue
        rows.append({
            "level": "all" if k is None else k, "sigma": None if k is None else float(levels[k]), "n": int(sel.sum()),
            "top1": float((pred[sel] == level[sel]).mean()),
            "within1": float((np.abs(pred[sel] - level[sel]) <= 1).mean()),
            "mae_raw": float(np.abs(raw[sel] - sigma[sel]).mean()),
            "mae": float(np.abs(calibrated[sel] - sigma[sel]).mean()),
            "bias_raw": float((raw[sel] - sigma[sel]).mean()),
            "bias": float((calibrated[sel] - sigma[sel]).mean()),
        })
    return rows


def heldout_metrics(levels, meta: np.ndarray, probs: np.ndarray, knots: np.ndarray, kind_names) -> dict:
    """Per-level tables of a validation set's held-out half (odd source ids) under the calibration
    ``knots``: ``textured`` and ``flat`` (:func:`level_table`) and ``per_kernel_textured`` (the
    "all" row of each blur kernel / PSF shape)."""
    from fastdefocus.stages.classify import apply_calibration

    raw = expected_sigma_raw(probs, levels)
    calibrated = apply_calibration(raw, knots)
    pred = probs.argmax(1)
    held = meta["source"] % 2 == 1

    def table(sel):
        return level_table(levels, meta["level"][sel].astype(int), meta["sigma"][sel], raw[sel], calibrated[sel],
                           pred[sel])

    out = {"textured": table(held & ~meta["flat"]), "flat": table(held & meta["flat"])}
    out["per_kernel_textured"] = {name: table(held & ~meta["flat"] & (meta["kind"] == k))[-1]
                                  for k, name in enumerate(kind_names)
                                  if (held & ~meta["flat"] & (meta["kind"] == k)).any()}
    return out


def confusion_picture(level: np.ndarray, pred: np.ndarray, n: int, path: Path, title: str) -> None:
    """Row-normalised confusion matrix as a PNG (true level down, predicted across)."""
    cm = np.zeros((n, n))
    np.add.at(cm, (level, pred), 1)
    cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    cell, pad = 24, 60
    img = np.full((pad + n * cell + 10, pad + n * cell + 10, 3), 255, np.uint8)
    heat = cv2.applyColorMap((255 * (1 - cm) ** 1).astype(np.uint8), cv2.COLORMAP_BONE)
    img[pad:pad + n * cell, pad:pad + n * cell] = cv2.resize(heat, (n * cell, n * cell), interpolation=cv2.INTER_NEAREST)
    for i in range(n):
        cv2.putText(img, str(i), (pad - 22, pad + i * cell + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        cv2.putText(img, str(i), (pad + i * cell + 5, pad - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    cv2.putText(img, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(img, "true level (rows) / predicted (columns)", (4, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".png", img)
    Path(path).write_bytes(buf.tobytes())


def finalize(cache_dir: Path, run_dir: Path, weights_dir: Path, docs_dir: Path | None = None, log=print) -> dict:
    """Calibrate on half of the validation sources, measure on the other half, export
    ONNX + safetensors + metadata into ``weights_dir`` and write the model card."""
    import torch
    from safetensors.torch import save_file

    from fastdefocus.backends.networks import build_network
    from fastdefocus.stages.classify import METADATA_NAME, sha256_file

    cache_dir, run_dir, weights_dir = Path(cache_dir), Path(run_dir), Path(weights_dir)
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    tcfg = state["config"]
    levels = np.asarray(state["levels"])
    summary = json.loads((cache_dir / "summary.json").read_text())
    spec = network_spec(tcfg, len(levels))
    model = build_network(spec)
    model.load_state_dict(state["model"])
    model.eval()
    patches = np.load(cache_dir / "val_patches.npy")
    meta = np.load(cache_dir / "val_meta.npy")
    probs = predict_probs(model, patches, tcfg["std_floor"], torch.device("cpu"))
    raw = expected_sigma_raw(probs, levels)
    pred = probs.argmax(1)
    fit = (meta["source"] % 2 == 0) & ~meta["flat"]
    knots = fit_calibration(raw[fit], meta["sigma"][fit], levels)
    held = meta["source"] % 2 == 1
    tables = heldout_metrics(levels, meta, probs, knots, summary.get("kinds", {}) or IDEAL_KINDS)
    weights_dir.mkdir(parents=True, exist_ok=True)
    st_path = weights_dir / "blur_classifier.safetensors"
    onnx_path = weights_dir / "blur_classifier.onnx"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(st_path))
    export_onnx(model, onnx_path)
    onnx_diff = check_onnx(model, onnx_path, patches[:1024], tcfg["std_floor"])
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    metadata = {
        "format": 1,
        "model": (f"{spec['name']} blur-level classifier (Galetto and Deng 2021, arXiv 2107.14443"
                  + ("" if spec["name"] == "MobileNetV2" else "; a faster network than the paper's") + ")"),
        "levels": levels.tolist(),
        "input": {"patch_size": PATCH, "channels": 1, "intensity": "luminance in [0, 1]",
                  "normalisation": "per patch: (p - mean) / max(std, std_floor), population std",
                  "std_floor": tcfg["std_floor"]},
        "output": "class probabilities (softmax over the levels)",
        "architecture": spec,
        "calibration": {"kind": "quantile mapping of the raw expected sigma onto sigma, piecewise linear",
                        "fitted_on": "validation sources with even id (textured)", "knots": knots.tolist()},
        "data": summary,
        "training": {"config": tcfg, "epochs": len(history),
                     "seconds": round(sum(h["seconds"] for h in history), 1), "history": history},
        "metrics_heldout": {"measured_on": "validation sources with odd id (never in training or calibration)",
                            **tables},
        "onnx_max_abs_prob_diff": onnx_diff,
        "files": {"onnx": {"name": onnx_path.name, "sha256": sha256_file(onnx_path)},
                  "safetensors": {"name": st_path.name, "sha256": sha256_file(st_path)}},
    }
    (weights_dir / METADATA_NAME).write_text(json.dumps(metadata, indent=1))
    if docs_dir is not None:
        docs_dir = Path(docs_dir)
        docs_dir.mkdir(parents=True, exist_ok=True)
        sel = held & ~meta["flat"]
        confusion_picture(meta["level"][sel].astype(int), pred[sel], len(levels), docs_dir / "confusion.png",
                          "held-out textured patches")
        (docs_dir / "MODEL.md").write_text(model_card(metadata))
    log(f"exported to {weights_dir}; onnx max abs prob diff {onnx_diff:.2e}")
    return metadata



def with_softmax(model):
    """The classifier with a softmax on its logits (eval mode): what the exported graphs compute."""
    import torch

    class WithSoftmax(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.softmax(self.net(x), dim=1)

    return WithSoftmax(model).eval()


def export_onnx(model, path: Path) -> None:
    """ONNX graph from normalised patches (N, 1, 32, 32) to probabilities (N, L)."""
    import warnings

    import torch

    wrapped = with_softmax(model)
    tmp = Path(str(path) + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (torch.zeros(8, 1, PATCH, PATCH),), str(tmp), dynamo=False,
                          input_names=["patches"], output_names=["probabilities"],
                          dynamic_axes={"patches": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=17)
    os.replace(tmp, path)


def check_onnx(model, path: Path, patches_u8: np.ndarray, std_floor: float) -> float:
    """Largest absolute difference of probabilities between ONNX Runtime and torch."""
    import onnxruntime as ort
    import torch
    x = normalize_batch(torch.from_numpy(np.ascontiguousarray(patches_u8)).float() / 255.0, std_floor).unsqueeze(1)
    with torch.no_grad():
        ref = torch.softmax(model.eval()(x), dim=1).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"patches": x.numpy()})[0]
    return float(np.abs(got - ref).max())


def _fmt_table(rows: list[dict]) -> str:
    out = ["| level | sigma px | n | top-1 | within 1 | MAE raw px | MAE calibrated px | bias raw px | bias calibrated px |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sig = "" if r["sigma"] is None else f"{r['sigma']:.3f}"
        out.append(f"| {r['level']} | {sig} | {r['n']} | {r['top1']:.3f} | {r['within1']:.3f} | {r['mae_raw']:.3f} | "
                   f"{r['mae']:.3f} | {r['bias_raw']:+.3f} | {r['bias']:+.3f} |")
    return "\n".join(out)


def _blur_and_camera_text(d: dict) -> str:
    """The model card's lines on the blur and the camera, for the generator the data came from."""
    kinds = ", ".join(f"{k} {v}" for k, v in d["kinds"].items())
    cam = d.get("camera")
    if not cam:  # the ideal-lens generator
        return (f"""- Blur: level drawn uniformly, sigma drawn continuously across the level's bin (log-uniform), applied to the whole
  crop before the patch is cut from its interior. Kernels: {kinds}
  (disc of radius R labelled sigma R/2; mixed = Gaussian then disc with variances adding). The Gaussian is the
  discrete Gaussian whose variance is exactly sigma^2.
- Camera after the blur: contrast 0.35-1.1 and offset, gamma 0.75-1.35, Gaussian noise std from
  {d.get('noise_stds')} (intensity units), 8-bit quantisation, JPEG quality 55-95 with probability {d.get('jpeg_prob')}.""")
    return (f"""- Blur: level drawn uniformly, sigma drawn continuously across the level's bin (log-uniform), applied in linear
  light (sRGB^2.2) to the whole colour crop before the patch is cut from its interior. Lens PSF shapes:
  {kinds}; each is scaled so that its second moment gives the drawn sigma (sigma^2 = (var_x + var_y) / 2: a
  uniform disc of radius R is sigma R/2). The Gaussian is the discrete Gaussian whose variance is exactly sigma^2.
- Scene before the lens: contrast {d.get('contrast', [0.35, 1.1])} and offset +-0.1 (sRGB).
- Camera after the lens (`fastdefocus.train.camera`; the label stays the lens blur): with probability
  {cam['camera_prob']}, a Bayer RGGB mosaic, Poisson-Gaussian noise (full well {cam['full_well'][0]:g}-{cam['full_well'][1]:g}
  photons log-uniform, read noise up to {cam['read_noise'][1]}, exposure {cam['exposure'][0]}-{cam['exposure'][1]}),
  demosaicing (OpenCV edge-aware 0.6, bilinear 0.4), a tone curve of gamma 1/2.0-1/2.5, and with probability
  {cam['sharpen_prob']} an unsharp mask (amount {cam['sharpen_amount'][0]}-{cam['sharpen_amount'][1]}, radius
  {cam['sharpen_radius'][0]}-{cam['sharpen_radius'][1]} px); otherwise an ideal sensor with Gaussian noise up to 0.01.
  Then 8 bits, colour JPEG (4:2:0) quality {cam['jpeg_quality'][0]}-{cam['jpeg_quality'][1]} with probability
  {cam['jpeg_prob']}, the estimator's luma; with probability {cam['downscale_prob']} all of it at twice the size,
  area-downscaled by 2 at the end (a photo the user downscaled).""")


def _kernel_rows(m: dict) -> str:
    return "\n".join(f"| {k} | {v['n']} | {v['top1']:.3f} | {v['within1']:.3f} | {v['mae']:.3f} | {v['bias']:+.3f} |"
                     for k, v in m["per_kernel_textured"].items())


def _calibration_text(meta: dict) -> str:
    c = meta["calibration"]
    gen = c.get("generator")
    if not gen:
        return (f"The calibration ({c['kind']}) was fitted on the other half of the validation sources "
                "(even id) of the training generator.")
    cam = gen["camera"]
    return (f"""The calibration (a piecewise-linear map of the raw expected sigma onto sigma) is the lower
envelope of two quantile mappings (`python -m fastdefocus.train.recalibrate`): one fitted on the other
half of these validation sources (even id), one on {c['fitted_on']}: a Gaussian lens and the camera
model's defaults (full camera with probability {cam['camera_prob']}: Bayer mosaic, Poisson-Gaussian noise, demosaicing,
tone curve, sharpening with probability {cam['sharpen_prob']}; JPEG with probability {cam['jpeg_prob']};
downscaled by 2 with probability {cam['downscale_prob']}). The camera fit is the lower one below about
1 px, where a real photo's own softness is read as blur by a fit on ideal-lens patches alone (it read
sharp photos at about 0.33 px); so these clean ideal-lens patches read low there.""")


def heldout_card(meta: dict) -> str:
    """The model card's held-out section (from its heading to the end of the card)."""
    m = meta["metrics_heldout"]
    tex_all = m["textured"][-1]
    flat_all = m["flat"][-1] if m["flat"] else None
    text = f"""## Held-out results
{m['measured_on']}. {_calibration_text(meta)}

Textured patches: top-1 {tex_all['top1']:.3f}, within one level {tex_all['within1']:.3f},
MAE of calibrated sigma {tex_all['mae']:.3f} px (raw expected sigma: {tex_all['mae_raw']:.3f} px).

{_fmt_table(m['textured'])}

Flat patches (not gated; they carry little blur information and get low confidence):
{'' if flat_all is None else f"top-1 {flat_all['top1']:.3f}, within one {flat_all['within1']:.3f}, MAE {flat_all['mae']:.3f} px over {flat_all['n']} patches."}

{_fmt_table(m['flat']) if m['flat'] else ''}

By blur kernel (textured, held out):

| kernel | n | top-1 | within 1 | MAE px | bias px |
|---|---|---|---|---|---|
{_kernel_rows(m)}

Confusion matrix (held-out textured patches, row-normalised): ![confusion](confusion.png)
"""
    cam = meta.get("metrics_heldout_camera")
    if cam:
        text += f"""
Camera-model patches ({cam['measured_on']}; the calibration set's other half): within one level
{cam['textured'][-1]['within1']:.3f}, MAE {cam['textured'][-1]['mae']:.3f} px.

{_fmt_table(cam['textured'])}
"""
    if "onnx_max_abs_prob_diff" in meta:
        text += f"""
ONNX export: largest absolute difference of probabilities against torch {meta['onnx_max_abs_prob_diff']:.1e}.
"""
    return text


def _network_text(spec: dict) -> str:
    if spec["name"] == "MobileNetV2":
        return (f"MobileNetV2 (standard inverted-residual layout, width multiplier {spec['width_mult']}, total "
                "stride 32 so a 32x32 patch ends as a 1x1 map)")
    convs = ", ".join(f"{c} channels stride {st}" for c, st in spec["layers"])
    head = f", a 1x1 convolution to {spec['head_channels']} channels" if spec.get("head_channels") else ""
    return (f"StridedCNN (`fastdefocus.backends.networks`: a {spec['stem_kernel']}x{spec['stem_kernel']} stem "
            f"and 3x3 convolutions ({convs}){head}, each with batch norm and ReLU, then the global mean and a "
            "linear layer; no depthwise layers, so every layer is one dense GEMM on a CPU)")


def _config_text(config: dict) -> dict:
    """The training config without the settings of the network it did not build."""
    skip = ({"width_mult"} if config.get("arch", "MobileNetV2") != "MobileNetV2"
            else {"layers", "stem_kernel", "head_channels"})
    return {k: v for k, v in config.items() if k not in skip}


def _distill_text(config: dict) -> str:
    if not config.get("teacher"):
        return ""
    return (f" Distilled from the model in `{config['teacher']}`: the loss is {1 - config['distill']:g} x the "
            f"label loss + {config['distill']:g} x the cross-entropy with the teacher's probabilities of the same "
            "patch (computed once, through ONNX Runtime, on the unaugmented patch).")


def model_card(meta: dict) -> str:
    d, t = meta["data"], meta["training"]
    levels = ", ".join(f"{s:.3f}" for s in meta["levels"])
    return f"""# Model card: fastdefocus blur-level classifier

Generated by `fastdefocus train` (`fastdefocus.train.training.model_card`) from the run's
own numbers; do not edit by hand.

## What it is
{meta['model']}: {_network_text(meta['architecture'])}, one
grayscale input channel, {meta['architecture']['num_classes']} outputs. Input: a 32x32 luminance patch in [0, 1],
normalised per patch as `(p - mean) / max(std, {meta['input']['std_floor']})`. Output: probabilities of the
blur levels. The estimator turns them into an expected sigma (probability-weighted mean of the
levels, then the monotone calibration below) and a confidence (probability mass within one level
of the most likely one).

Levels (Gaussian sigma, px): {levels}.

## Data
Synthetic, generated by `fastdefocus.train.training.generate_dataset` (seed {d['seed']}):
{d['n_train']:,} training patches and {d['n_val']:,} validation patches.
- Sharp sources: {d['train_photos']} photos for training and {d['val_photos']} other photos for validation
  (BSDS500 train and the SR test sets of the shared data, downscaled by {d.get('source_downscale', 2)} with area averaging; BSDS500 val is
  not used at all, it is kept for evaluating the estimator), plus procedural dead-leaves images (probability
  {d['dead_leaves_prob']}; different seeds for training and validation; rendered {d.get('leaves_supersample', 1)}x finer and area-averaged down).
{_blur_and_camera_text(d)}
- Terms of the data: the photos are BSDS500 (Arbelaez et al., TPAMI 2011; Corel images that UC Berkeley
  distributes for research and education) and the Set5, Set14 and Sun-Hays 80 super-resolution test sets
  (collected by their authors for research). None of them is shipped, only weights learnt from patches of
  them; as their terms are research use, check them before a commercial use of the weights. The
  dead-leaves images are the project's own (procedural).
- Flat patches (contrast-scaled std of the sharp patch < {d['flat_std']}) are kept out of training and
  measured separately. Training patches get a random flip/90-degree rotation every epoch.

## Training
`fastdefocus train` with {_config_text(t['config'])}: {t['epochs']} epochs, {t['seconds'] / 60:.1f} minutes of training on
the 2-core CPU development machine (AMD EPYC, 2 cores, no GPU). Loss: cross-entropy against ordinal soft labels
(a Gaussian of width {t['config']['label_tau']} levels around the patch's continuous level position) plus
{t['config']['position_weight']} x the absolute error of the expected level position, so a neighbour level costs
little and a far one a lot.{_distill_text(t['config'])}

{heldout_card(meta)}"""
