"""Make the README pictures of the applications with the project's own commands.

    python docs/applications/make_pictures.py [--output docs/applications]

The inputs are generated (fastdefocus.scenes: a colour dead-leaves scene blurred by a map
of depth layers), written as PNGs, and run through ``fastdefocus magnify``, ``enhance``
and ``fuse`` exactly as a user would (defocus maps estimated by the shipped model).
Writes magnify.png (input | x2.5 defocus), enhance.png (input | enhanced, a 2x crop)
and fuse.png (near focus | far focus | fused | decision, at 3/4 size), each under 300 KB.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from fastdefocus.apps._applications import add_commands
from fastdefocus.io.images import read_image, write_image
from fastdefocus.scenes import blur_by_map, demo_scene

SIZE = (240, 320)


def run(argv) -> None:
    parser = argparse.ArgumentParser(prog="fastdefocus")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    print("fastdefocus " + " ".join(Path(a).name if "/" in a else a for a in argv))
    if args.func(args) != 0:
        raise SystemExit(f"command failed: {argv}")


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def row(*panels) -> np.ndarray:
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    parts = []
    for panel in panels:
        parts += [panel, gap]
    return np.concatenate(parts[:-1], axis=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent))
    out_dir = Path(parser.parse_args(argv).output)
    blurred, sigma, sharp = demo_scene(size=SIZE, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_image(tmp / "photo.png", blurred)

        run(["magnify", str(tmp / "photo.png"), "-o", str(tmp / "magnified.png"), "--amount", "2.5"])
        magnified = read_image(tmp / "magnified.png")
        write_image(out_dir / "magnify.png", row(labelled(blurred, "input"),
                                                 labelled(magnified, "magnify --amount 2.5")), force=True)

        run(["enhance", str(tmp / "photo.png"), "-o", str(tmp / "enhanced.png"), "--amount", "1.5"])
        enhanced = read_image(tmp / "enhanced.png")
        # a 2x crop around the sharpest layer, where the change shows
        ys, xs = np.nonzero(sigma == 0)
        cy = int(np.clip(np.median(ys), 60, SIZE[0] - 60))
        cx = int(np.clip(np.median(xs), 80, SIZE[1] - 80))
        crop = (slice(cy - 60, cy + 60), slice(cx - 80, cx + 80))
        zoom = lambda im: cv2.resize(im[crop], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)  # noqa: E731
        write_image(out_dir / "enhance.png", row(labelled(zoom(blurred), "input (2x crop)"),
                                                 labelled(zoom(enhanced), "enhance --amount 1.5")), force=True)

        # Two shots of the same scene: focused at the nearest layer (sigma as generated) and at
        # the farthest one (blur grows towards the near layers).
        sharp_f = sharp.astype(np.float32) / 255.0
        far_sigma = np.float32(sigma.max()) - sigma
        near = blurred
        far = np.clip(blur_by_map(sharp_f, far_sigma) * 255 + 0.5, 0, 255).astype(np.uint8)
        write_image(tmp / "near.png", near)
        write_image(tmp / "far.png", far)
        run(["fuse", str(tmp / "near.png"), str(tmp / "far.png"), "-o", str(tmp / "fused.png"),
             "--decision", str(tmp / "decision.png")])
        fused = read_image(tmp / "fused.png")
        decision = cv2.cvtColor(read_image(tmp / "decision.png"), cv2.COLOR_GRAY2RGB)
        small = lambda im: cv2.resize(im, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)  # noqa: E731
        write_image(out_dir / "fuse.png", row(*(labelled(small(im), text) for im, text in (
            (near, "shot 1"), (far, "shot 2"), (fused, "fuse"), (decision, "decision (white: 2)")))), force=True)
    for name in ("magnify.png", "enhance.png", "fuse.png"):
        print(f"{out_dir / name}: {(out_dir / name).stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
