"""The ``leukolib`` command line.

Commands
--------
``leukolib segment INPUT... --out DIR``
    Segment the nucleus of image files (or of every image in folders) and
    write ``<stem>_mask.png`` (0/255) and ``<stem>_overlay.png`` for each.
``leukolib evaluate --dataset NAME --root DIR``
    Run a segmentation method over a dataset with ground truth: the six
    metrics (mean and std), images/s, and optionally a JSON record.
``leukolib train-unet --dataset NAME --root DIR --out RUN_DIR``
    Train the U-Net by k-fold cross-validation (resumable); the run directory
    is then the ``--model`` of ``--method unet|ensemble``.
``leukolib datasets``
    The dataset names the commands understand.

Each command lives in a module of this package (:mod:`~leukolib.cli.segment`,
:mod:`~leukolib.cli.train` ...) with what they share in
:mod:`~leukolib.cli.common`.

Exit status: 0 on success, 1 when some images failed (the others were still
processed; the failures are listed at the end), 2 for a usage error (bad
arguments, unknown dataset or method, outputs that exist without
``--overwrite``), in which case nothing is written.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from leukolib.cli.common import UsageError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: The modules that add sub-commands, in the order of ``leukolib --help``.
COMMAND_MODULES: tuple[str, ...] = ("segment", "train", "classify", "explain", "duplicates")


def _version() -> str:
    from leukolib import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``leukolib`` command."""
    parser = argparse.ArgumentParser(
        prog="leukolib",
        description="Explainable ALL CAD (Diaz Resendiz et al., Cancers 2023): white-blood-cell "
        "nucleus segmentation, classification and explanations.",
        epilog="Exit status: 0 ok, 1 some images failed, 2 usage error (nothing written).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"leukolib.cli.{name}").add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``leukolib`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (0 ok, 1 some inputs failed, 2 usage error).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse errors: a status, not an exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"leukolib {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("leukolib: interrupted", file=sys.stderr)
        return 130
