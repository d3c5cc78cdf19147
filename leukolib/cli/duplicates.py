"""``leukolib duplicates``: the groups of near-duplicate images in a user's folders."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

from leukolib.cli.common import (
    UsageError,
    check_new_outputs,
    collect_inputs,
    reason,
    report_failures,
)

__all__ = ["add_parsers", "cmd_duplicates"]

#: The ``format`` of the JSON record.
FORMAT = "leukolib.duplicates/1"

#: ``--closest`` lists pairs down to this far below the threshold.
CLOSEST_RANGE = 0.3


def add_parsers(sub) -> None:
    """Add ``duplicates``."""
    from leukolib.data.duplicates import DEFAULT_RULE

    p = sub.add_parser(
        "duplicates", help="list the groups of identical and near-duplicate images",
        description="Find the images that show the same picture: identical pixels, or the "
        "same cell or field shifted (up to half the side), resampled or exposed differently. "
        "Prints each group with the scores that link it; a split must keep a group on one "
        f"side. The score is the normalised cross-correlation of {DEFAULT_RULE.size}x"
        f"{DEFAULT_RULE.size} high-passed thumbnails, maximised over shifts; pairs scoring "
        f"at least {DEFAULT_RULE.threshold} (chosen on the shared datasets) are linked. "
        "Unreadable images are listed at the end (exit status 1). Scoring takes about "
        "10 s per 400 images and grows as the square of their number.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image folders and/or files")
    p.add_argument("--threshold", "-t", type=float, metavar="T",
                   help=f"lowest score of a near duplicate (default {DEFAULT_RULE.threshold})")
    p.add_argument("--max-shift", type=float, metavar="F",
                   help=f"largest shift searched, fraction of the side "
                   f"(default {DEFAULT_RULE.max_shift})")
    p.add_argument("--closest", type=int, default=0, metavar="K",
                   help="also list the K highest-scoring pairs below the threshold (down to "
                   f"{CLOSEST_RANGE} below it)")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write the groups, the pairs and the rule as JSON")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="also scan the sub-folders of input folders")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_duplicates)


def _rule(args: argparse.Namespace):
    from dataclasses import replace

    from leukolib.data.duplicates import DEFAULT_RULE

    changes = {k: v for k, v in (("threshold", args.threshold), ("max_shift", args.max_shift))
               if v is not None}
    try:
        return replace(DEFAULT_RULE, **changes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _read_all(paths: list[Path], rule, quiet: bool):
    """Thumbnails and fingerprints of the readable images; the failures."""
    from tqdm.auto import tqdm

    from leukolib.data.duplicates import thumbnail
    from leukolib.data.fingerprint import image_fingerprint
    from leukolib.data.io import read_image

    read, thumbs, prints, failures = [], [], [], []
    for src in tqdm(paths, desc="read", unit="img", disable=quiet, file=sys.stderr):
        try:
            image = read_image(src)
        except Exception as exc:  # noqa: BLE001 - report and go on
            failures.append((str(src), reason(exc, src)))
            continue
        read.append(src)
        thumbs.append(thumbnail(image, rule))
        prints.append(image_fingerprint(image))
    stack = np.stack(thumbs) if thumbs else np.zeros((0, rule.size, rule.size), np.float32)
    return read, stack, prints, failures


def _command_line(args: argparse.Namespace) -> str:
    """The command as a user would type it again (for the JSON record)."""
    words = ["leukolib", "duplicates", *map(str, args.inputs)]
    for flag, value in (("--threshold", args.threshold), ("--max-shift", args.max_shift),
                        ("--closest", args.closest or None), ("--json", args.json)):
        if value is not None:
            words += [flag, str(value)]
    words += [f for f, on in (("--recursive", args.recursive), ("--overwrite", args.overwrite))
              if on]
    return shlex.join(words)


def _pair_dict(q, names: list[str]) -> dict:
    return {"a": names[q.i], "b": names[q.j], "score": round(q.score, 4),
            "shift": [round(q.shift[0], 3), round(q.shift[1], 3)], "exact": q.exact}


def _pair_text(p: dict, short: bool = False) -> str:
    what = "identical" if p["exact"] else f"{p['score']:.3f}"
    dy, dx = p["shift"]
    moved = f" (shift {dy:+.0%} {dx:+.0%})" if not p["exact"] and max(abs(dy), abs(dx)) else ""
    a, b = (Path(p["a"]).name, Path(p["b"]).name) if short else (p["a"], p["b"])
    return f"{a} ~ {b}: {what}{moved}"


def _groups(names: list[str], pairs: list, rule) -> list[dict]:
    """Groups of two images or more, each with its members and the pairs inside it."""
    from leukolib.data.duplicates import groups_from_pairs

    labels = groups_from_pairs(len(names), pairs, rule.threshold)
    out = []
    for g in np.unique(labels):
        members = np.flatnonzero(labels == g)
        if len(members) > 1:
            inside = [_pair_dict(q, names) for q in pairs
                      if labels[q.i] == g and (q.exact or q.score >= rule.threshold)]
            out.append({"images": [names[k] for k in members], "pairs": inside})
    return out


def _print(groups: list[dict], closest: list[dict], n: int, rule) -> None:
    how = f"score >= {rule.threshold:g}, shifts up to {rule.max_shift:g} of the side"
    print(f"{len(groups)} group(s) of identical or near-duplicate images among {n} image(s) "
          f"({how}):")
    for k, g in enumerate(groups, 1):
        print(f"group {k}: {len(g['images'])} images")
        for name in g["images"]:
            print(f"  {name}")
        for p in g["pairs"]:
            print(f"    {_pair_text(p, short=True)}")
    if closest:
        print(f"closest pairs below {rule.threshold:g} (not grouped):")
        for p in closest:
            print(f"  {_pair_text(p)}")


def cmd_duplicates(args: argparse.Namespace) -> int:
    """``leukolib duplicates``: print (and record) the groups of near-duplicate images."""
    from leukolib import __version__
    from leukolib.data.duplicates import match_thumbnails
    from leukolib.runs import now, write_json

    rule = _rule(args)
    if args.closest < 0:
        raise UsageError(f"--closest must be 0 or more, got {args.closest}")
    json_path: Path | None = args.json.expanduser() if args.json else None
    if json_path is not None:
        if json_path.is_dir():
            raise UsageError(f"--json {json_path}: is a folder")
        check_new_outputs({json_path: [Path(i) for i in args.inputs]}, args.overwrite)
    jobs, failures = collect_inputs(args.inputs, Path.cwd(), args.recursive)
    if not jobs:
        for path, why in failures:
            print(f"leukolib: {path}: {why}", file=sys.stderr)
        raise UsageError("no image files found in the inputs")
    read, thumbs, prints, unread = _read_all([src for src, _ in jobs], rule, args.quiet)
    failures += unread
    names = [str(p) for p in read]
    if len(read) > 1 and not args.quiet:
        print(f"scoring {len(read) * (len(read) - 1) // 2} pairs", file=sys.stderr)
    # Pairs far below the threshold say nothing about it, and a big folder has millions.
    floor = max(-1.0, rule.threshold - CLOSEST_RANGE) if args.closest else None
    pairs = match_thumbnails(thumbs, prints, rule, min_score=floor) if len(read) > 1 else []
    groups = _groups(names, pairs, rule)
    closest = [_pair_dict(q, names) for q in pairs
               if not q.exact and q.score < rule.threshold][:args.closest]
    _print(groups, closest, len(read), rule)
    if json_path is not None:
        write_json(json_path, {
            "format": FORMAT, "command": _command_line(args), "date": now(),
            "leukolib": __version__, "rule": rule.to_dict(),
            "inputs": [str(i) for i in args.inputs], "images": names, "groups": groups,
            "closest_non_matching": closest,
            "failures": [{"path": p, "reason": r} for p, r in failures]})
        print(f"wrote {json_path}", file=sys.stderr)
    return report_failures(failures, len(names), "compared")
