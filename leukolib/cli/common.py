"""What every ``leukolib`` command shares: usage errors, inputs, outputs that never overwrite.

Batch commands (``segment``, ``classify``, ``explain``) take image files and
folders, refuse before writing anything when two inputs would write the same
output name or when an output exists without ``--overwrite``, go on past a bad
file and list the failures at the end (exit status 1).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "UsageError",
    "add_device_argument",
    "add_training_arguments",
    "check_new_outputs",
    "collect_inputs",
    "positive_int",
    "reason",
    "report_failures",
    "write_png",
]


class UsageError(Exception):
    """A problem with the command line or its targets: message, exit status 2."""


def _device(value: str) -> str:
    from leukolib.device import device_name

    try:
        return device_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (default: ``$LEUKOLIB_DEVICE``, else CUDA)."""
    parser.add_argument("--device", type=_device, metavar="DEVICE",
                        help="cpu, cuda or cuda:N (default: $LEUKOLIB_DEVICE, else cuda when "
                        "present)")


def add_training_arguments(parser: argparse.ArgumentParser, profile_help: str) -> None:
    """``--dataset``, ``--root``, ``--out`` and ``--profile``: what every training command takes."""
    parser.add_argument("--dataset", "-d", required=True, metavar="NAME", help="dataset name")
    parser.add_argument("--root", type=Path, metavar="DIR", help="dataset folder")
    parser.add_argument("--out", "-o", required=True, type=Path, metavar="RUN_DIR",
                        help="run folder")
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"],
                        help=profile_help)


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def reason(exc: BaseException, src: Path | None = None) -> str:
    """The message of an exception, without the path the caller prints already."""
    text = str(exc).strip() or type(exc).__name__
    if src is not None and text.startswith(f"{src}: "):
        text = text[len(str(src)) + 2 :]
    return text


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def collect_inputs(
    inputs: Sequence[str | Path],
    out: Path,
    recursive: bool = False,
    own_suffixes: Sequence[str] = (),
) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Expand files and folders into ``(image path, output base)`` pairs.

    Parameters
    ----------
    inputs : sequence of str or Path
        Files (taken whatever their suffix) and folders (their image files,
        sorted; sub-folders too with ``recursive``).
    out : Path
        The output folder: files in it ending with one of ``own_suffixes``
        (this command's own outputs) are not taken as inputs.
    recursive : bool
        Scan sub-folders, mirroring them in the output names.
    own_suffixes : sequence of str

    Returns
    -------
    jobs : list of (Path, Path)
        Image path and output base (relative, without suffix), each image once.
    missing : list of (str, str)
        Inputs that do not exist, with the reason.
    """
    from leukolib.data.io import is_image_file

    jobs: list[tuple[Path, Path]] = []
    missing: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            for f in sorted(f for f in found if f.is_file() and is_image_file(f)):
                own = any(f.name.endswith(s) for s in own_suffixes) and _inside(f, out)
                if not own and f.resolve() not in seen:
                    seen.add(f.resolve())
                    jobs.append((f, f.relative_to(p).with_suffix("")))
        elif p.exists():
            if p.resolve() not in seen:
                seen.add(p.resolve())
                jobs.append((p, Path(p.stem)))
        else:
            missing.append((str(p), "no such file or folder"))
    return jobs, missing


def check_new_outputs(targets: dict[Path, list[Path]], overwrite: bool) -> None:
    """Refuse, before anything is written, clashing or existing output files.

    Parameters
    ----------
    targets : dict
        Each output file to the inputs that would write it.
    overwrite : bool
        Existing outputs may be replaced.

    Raises
    ------
    UsageError
        Two inputs write one file (same stem; compared case-folded, so that
        ``Cell.png`` and ``cell.bmp`` clash on any file system), or an output
        exists without ``overwrite``.
    """
    folded: dict[str, list[Path]] = {}
    for target, srcs in targets.items():
        folded.setdefault(str(target).casefold(), []).extend(srcs)
    clashes = {t: s for t, s in folded.items() if len(s) > 1}
    if clashes:
        lines = [f"  {Path(t).name}: " + ", ".join(map(str, s)) for t, s in clashes.items()]
        raise UsageError(
            f"{len(clashes)} output name(s) would be written by several inputs with the same "
            "stem; rename them or run them separately (nothing was written):\n"
            + "\n".join(lines[:20]) + ("\n  ..." if len(lines) > 20 else ""))
    if not overwrite:
        existing = [t for t in targets if t.exists()]
        if existing:
            shown = "\n".join(f"  {t}" for t in existing[:20])
            more = f"\n  ... and {len(existing) - 20} more" if len(existing) > 20 else ""
            raise UsageError(f"{len(existing)} output file(s) already exist; use --overwrite "
                             f"to replace them (nothing was written):\n{shown}{more}")


def write_png(path: Path, rgb_or_gray: np.ndarray) -> None:
    """Write an RGB or gray ``uint8`` array as PNG (folders created)."""
    import cv2

    a = rgb_or_gray
    if a.ndim == 3:  # OpenCV writes BGR
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), a):
        raise OSError(f"{path}: cannot write the file")


def report_failures(failures: Iterable[tuple[str, str]], done: int, what: str) -> int:
    """Print what was done and every failure; the exit status (1 if any failed)."""
    failures = list(failures)
    print(f"{what} {done} image(s)", file=sys.stderr)
    if failures:
        print(f"{len(failures)} input(s) failed:", file=sys.stderr)
        for path, why in failures:
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0
