"""The estimator's command-line options, generated from :class:`fastdefocus.config.EstimatorConfig`.

Every command that estimates (``estimate``, ``demo``, ``video``, ``magnify``, ``enhance``, ``fuse``,
``eval``, ``bench``) and the scripts in ``benchmarks/`` take the same options through this pair; the
defaults and help texts are the config's own, so no parser keeps a copy of a default.
"""
from __future__ import annotations

import argparse
import dataclasses

from fastdefocus.config import EstimatorConfig

#: Options not offered on the command line (a Python-only concern).
_NOT_ON_CLI = ("max_pixels",)
_TYPES = {"int": int, "float": float, "str": str, "str | None": str}


def add_estimator_arguments(parser: argparse.ArgumentParser, exclude=(), **defaults) -> None:
    """Add ``--stride``, ``--device``, ``--backend``, ``--sigma0``, ``--radius``, ``--eps``,
    ``--iterations``, ``--snap``, ``--batch-size`` and ``--weights``, except the option names in
    ``exclude`` (a command whose own option has that name: ``enhance --radius``); ``defaults``
    overrides the config's defaults for this parser (``fuse`` uses ``stride=16``)."""
    group = parser.add_argument_group("estimator options")
    for f in dataclasses.fields(EstimatorConfig):
        if f.name in _NOT_ON_CLI or f.name in exclude:
            continue
        default = defaults.get(f.name, f.default)
        kwargs = {"default": None, "dest": f.name,
                  "help": f"{f.metadata['help']} (default {default})"}
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        kwargs["type"] = _TYPES[f.type] if isinstance(f.type, str) else f.type
        group.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    if defaults:
        parser.set_defaults(_estimator_defaults=defaults)


def config_from_args(args: argparse.Namespace) -> EstimatorConfig:
    """The EstimatorConfig of parsed arguments: the options given, the parser's own defaults
    (``add_estimator_arguments(..., **defaults)``), else the config's."""
    options = dict(getattr(args, "_estimator_defaults", None) or {})
    for f in dataclasses.fields(EstimatorConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            options[f.name] = value
    return EstimatorConfig(**options)


def estimator_from_args(args: argparse.Namespace):
    """A DefocusEstimator built from parsed arguments."""
    from fastdefocus.estimator import DefocusEstimator
    return DefocusEstimator(config_from_args(args))
