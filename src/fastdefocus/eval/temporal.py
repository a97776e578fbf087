"""Temporal stability of video maps: flicker on real clips, and error on a generated sequence
with known truth (camera motion, a focus pull and a cut), per-frame maps against the filtered
ones of ``stream(..., stable=True)`` (and the EMA ``smoothing``), in the same run.

- :func:`generated_sequence`: frames and their true sigma maps: a pan across a blurred
  dead-leaves scene, a focus pull (the sigma map scaled up frame by frame), then a cut to
  another scene; 8-bit frames with a little noise.
- :func:`run_sequence`: per-frame / filtered maps of a sequence: mean error to the truth,
  flicker (mean |sigma_t - sigma_(t-1)| per pixel), frames after the cut until the filtered map
  is as close to the truth as the per-frame map (within 5%).
- :func:`real_clips`: flicker of the clips in ``real/video`` (every frame changes: they
  alternate the two dual-pixel views of one photo), and the frames to follow a cut made by
  joining two clips.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

#: Frames of each part of the generated sequence (pan, focus pull, after the cut).
PART = 12


def _scene(rng, h, w, pad):
    import cv2

    from fastdefocus.scenes import dead_leaves, layered_sigma_map
    H, W = h + 2 * pad, w + 2 * pad
    sharp = cv2.resize(dead_leaves(rng, size=max(H, W) // 2, colour=False), (W, H),
                       interpolation=cv2.INTER_LINEAR)[:H, :W].astype(np.float32)
    truth = layered_sigma_map(H, W, rng, sigmas=(0.0, 1.0, 2.5, 4.0))
    return sharp, truth


def generated_sequence(seed: int = 0, height: int = 240, width: int = 320, noise: float = 0.01):
    """Frames (uint8 gray) and true sigma maps: PART frames panning 2 px per frame, PART frames
    of a focus pull (truth x 1.0 -> 1.5), then PART frames of another scene (the cut at
    frame 2 * PART). Returns (frames, truths, cut_index)."""
    from fastdefocus.scenes import blur_by_map

    rng = np.random.default_rng(seed)
    pad = 2 * PART + 2
    sharp, truth = _scene(rng, height, width, pad)
    blurred = blur_by_map(sharp, truth)
    frames, truths = [], []

    def add(image, t):
        noisy = image + rng.normal(0.0, noise, image.shape).astype(np.float32)
        frames.append(np.clip(noisy * 255 + 0.5, 0, 255).astype(np.uint8))
        truths.append(t.astype(np.float32))

    for k in range(PART):  # pan
        y, x = pad, pad + 2 * k - PART
        add(blurred[y:y + height, x:x + width], truth[y:y + height, x:x + width])
    crop = (slice(pad, pad + height), slice(pad, pad + width))
    for k in range(PART):  # focus pull on the static view
        t = truth[crop] * np.float32(1.0 + 0.5 * k / (PART - 1))
        add(blur_by_map(sharp[crop], t), t)
    sharp2, truth2 = _scene(rng, height, width, 0)
    blurred2 = blur_by_map(sharp2, truth2)
    for _ in range(PART):  # after the cut: another scene, static
        add(blurred2[:height, :width], truth2[:height, :width])
    return frames, truths, 2 * PART


def _flicker(maps, ranges) -> float:
    d = [np.abs(maps[t] - maps[t - 1]).mean() for a, b in ranges for t in range(a + 1, b)]
    return float(np.mean(d))


def _follow(filtered, per_frame, truths, cut) -> int | None:
    """Frames after the cut until the filtered map's error to the truth is within 5% (or
    0.02 px) of the per-frame map's."""
    for k in range(cut, len(truths)):
        ef = np.abs(filtered[k] - truths[k]).mean()
        ep = np.abs(per_frame[k] - truths[k]).mean()
        if ef <= max(1.05 * ep, ep + 0.02):
            return k - cut
    return None


def _maps(est, frames, **stream_options):
    return [r.sigma for r in est.stream(iter(frames), **stream_options)]


def run_sequence(est, seed: int = 0, smoothing: float = 0.7) -> dict:
    frames, truths, cut = generated_sequence(seed)
    modes = {"per-frame": {}, "stable": {"stable": True}, f"EMA smoothing {smoothing:g}": {"smoothing": smoothing}}
    out = {"frames": len(frames), "cut": cut, "modes": {}}
    per_frame = None
    for name, options in modes.items():
        maps = _maps(est, frames, **options)
        if per_frame is None:
            per_frame = maps
        err = [float(np.abs(m - t).mean()) for m, t in zip(maps, truths)]
        static = [(PART, 2 * PART), (2 * PART, 3 * PART)]
        out["modes"][name] = {"mae": float(np.mean(err)), "mae_pan": float(np.mean(err[:PART])),
                              "mae_pull": float(np.mean(err[PART:2 * PART])),
                              "mae_after_cut": float(np.mean(err[2 * PART:])),
                              "flicker_after_cut": _flicker(maps, [(2 * PART, 3 * PART)]),
                              "flicker_all": _flicker(maps, [(0, PART), static[0], static[1]]),
                              "follow_cut": _follow(maps, per_frame, truths, cut)}
    base = out["modes"]["per-frame"]
    for m in out["modes"].values():
        m["mae_ratio"] = m["mae"] / base["mae"]
        m["flicker_ratio"] = m["flicker_all"] / base["flicker_all"]
    return out


def _clip_frames(path: Path, limit: int, max_width: int):
    import cv2

    from fastdefocus.io.video import video_frames
    for k, frame in enumerate(video_frames(path)):
        if k >= limit:
            return
        h, w = frame.shape[:2]
        if w > max_width:
            frame = cv2.resize(frame, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA)
        yield frame


def real_clips(est, folder: Path, frames: int = 30, max_width: int = 810, smoothing: float = 0.7) -> dict:
    """Flicker of each clip (its first ``frames`` frames, at most ``max_width`` px wide), per
    frame and filtered; and a cut: clip A then clip B (same size), frames until the filtered map
    of B is as close to B's per-frame map as B's own filtered steady state (within 0.05 px)."""
    clips = sorted(Path(folder).glob("*.mp4"))
    if not clips:
        raise FileNotFoundError(f"no .mp4 clips in {folder}")
    rows = []
    sequences = {}
    for path in clips:
        seq = list(_clip_frames(path, frames, max_width))
        if len(seq) < 3:
            print(f"temporal: {path.name} has fewer than 3 frames; skipped", file=sys.stderr)
            continue
        sequences[path.name] = seq
        row = {"clip": path.name, "frames": len(seq), "size": list(seq[0].shape[:2])}
        for name, options in (("per-frame", {}), ("stable", {"stable": True}), ("ema", {"smoothing": smoothing})):
            row[name] = _flicker(_maps(est, seq, **options), [(0, len(seq))])
        row["stable_ratio"] = row["stable"] / row["per-frame"]
        row["ema_ratio"] = row["ema"] / row["per-frame"]
        rows.append(row)
        print(f"temporal: {path.name} flicker {row['per-frame']:.3f} -> {row['stable']:.3f} px", file=sys.stderr)
    cuts = []
    names = list(sequences)
    for a, b in zip(names, names[1:]):
        A, B = sequences[a], sequences[b]
        if A[0].shape != B[0].shape:
            continue
        n = min(len(A), len(B), 10)
        joined = A[:n] + B[:n]
        for name, options in (("stable", {"stable": True}), ("ema", {"smoothing": smoothing})):
            maps = _maps(est, joined, **options)
            own = _maps(est, B[:n], **options)  # B alone: where the filter settles without A
            k = next((i for i in range(n) if np.abs(maps[n + i] - own[i]).mean() <= 0.05), None)
            cuts.append({"from": a, "to": b, "mode": name, "frames_to_follow": k})
    ratios = [r["stable_ratio"] for r in rows]
    return {"folder": str(folder), "clips": rows, "cuts": cuts,
            "median_stable_ratio": float(np.median(ratios)) if ratios else None,
            "median_ema_ratio": float(np.median([r["ema_ratio"] for r in rows])) if rows else None,
            "smoothing": smoothing}


def temporal_markdown(seq: dict | None, clips: dict | None) -> str:
    lines = ["### Video maps over time"]
    if seq is not None:
        lines += ["", f"Generated sequence ({seq['frames']} frames, 320 x 240: a pan of 2 px per frame, a focus pull "
                  "(truth x 1.0 -> 1.5), a cut to another scene at frame "
                  f"{seq['cut']}; 8-bit, noise 0.01):", "",
                  "| maps | mean error px | ratio | pan | focus pull | after the cut | flicker px | ratio | "
                  "frames to follow the cut |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, m in seq["modes"].items():
            follow = "n/a" if m["follow_cut"] is None else str(m["follow_cut"])
            lines.append(f"| {name} | {m['mae']:.3f} | {m['mae_ratio']:.2f} | {m['mae_pan']:.3f} | "
                         f"{m['mae_pull']:.3f} | {m['mae_after_cut']:.3f} | {m['flicker_all']:.3f} | "
                         f"{m['flicker_ratio']:.2f} | {follow} |")
    if clips is not None:
        lines += ["", f"Real clips ({Path(clips['folder']).name}: each alternates the two dual-pixel views of one "
                  "photo, so every frame changes a little): flicker = mean |sigma_t - sigma_(t-1)| per pixel, px.", "",
                  "| clip | frames | size | per-frame | stable | ratio | EMA "
                  f"{clips['smoothing']:g} | ratio |", "|---|---:|---|---:|---:|---:|---:|---:|"]
        for r in clips["clips"]:
            lines.append(f"| {r['clip']} | {r['frames']} | {r['size'][1]} x {r['size'][0]} | {r['per-frame']:.3f} | "
                         f"{r['stable']:.3f} | {r['stable_ratio']:.2f} | {r['ema']:.3f} | {r['ema_ratio']:.2f} |")
        if clips["median_stable_ratio"] is not None:
            lines.append(f"\nMedian ratio: stable {clips['median_stable_ratio']:.2f}, EMA "
                         f"{clips['median_ema_ratio']:.2f}.")
        if clips["cuts"]:
            follow = {}
            for c in clips["cuts"]:
                follow.setdefault(c["mode"], []).append(c["frames_to_follow"])
            parts = [f"{mode}: {', '.join('never' if k is None else str(k) for k in ks)}"
                     for mode, ks in follow.items()]
            lines.append("\nCuts (one clip joined to the next of the same size), frames until the map is within "
                         "0.05 px of the second clip's own: " + "; ".join(parts) + ".")
    return "\n".join(lines)
