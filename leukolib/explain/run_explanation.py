"""One run's explanations of its test images (:func:`explain_run`), saved and reused.

The thin layer between a :class:`~leukolib.classification.ClassifierRun` and
this stage's measures, which take plain things: the run's best-fold model,
its test images as the network sees them (through the run's own segmenter),
the ground-truth masks warped to the network's input, and the maps. With a
``cache`` folder the results are saved and reused when the same run,
settings and images ask again (the benchmark resumes this way).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukolib.explain.cams import compute_cams, resolve_methods
from leukolib.explain.faithfulness import RANDOM_DRAWS, faithfulness_scores
from leukolib.explain.localization import localization_scores
from leukolib.explain.sanity import sanity_check
from leukolib.profiles import Profile, get_profile
from leukolib.runs import jsonable

__all__ = ["FRAMES", "ModelExplanation", "explain_run", "test_indices"]

#: The cache's format: a cache of another format is recomputed (2: the random map on the
#: CAMs' grid, averaged over draws; the ``best_nucleus`` column).
FORMAT = "leukolib.explanation/2"

#: The per-image tables of a model's explanations.
FRAMES = ("localization", "faithfulness", "curves", "sanity")


@dataclass
class ModelExplanation:
    """One model's explanations of its test images.

    Attributes
    ----------
    key : str
        The run's key (``"segmented-mish-medium"``).
    fold : int
        The fold model explained (the run's best by default).
    ids : list of str
    labels, targets : ndarray of int
        True and explained (predicted) classes.
    logits : ndarray (N, C)
        The explained model's logits.
    images : ndarray of uint8 (N, S, S, 3)
        What the network saw.
    nucleus, cell : ndarray of bool (N, S, S) or None
        Masks at input resolution (``mask_source`` says where they come from).
    cams : dict of str to ndarray (N, S, S)
    localization, faithfulness, curves, sanity : DataFrame or None
        Per-image scores (with ``model``), mean curves, rank correlations.
    meta : dict
        What produced it (settings, run, ``random_draws``: the random maps
        averaged per image of the faithfulness reference), checked when a
        cache is reused; also ``mask_source`` and ``grid`` (the maps'
        resolution, that of the random maps too).
    """

    key: str
    fold: int
    ids: list[str]
    labels: np.ndarray
    targets: np.ndarray
    logits: np.ndarray
    images: np.ndarray
    nucleus: np.ndarray | None
    cell: np.ndarray | None
    cams: dict[str, np.ndarray]
    localization: pd.DataFrame | None = None
    faithfulness: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    sanity: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write arrays (maps as float16), tables (CSV) and ``meta.json`` into ``folder``."""
        from leukolib.runs import write_json

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {"labels": self.labels, "targets": self.targets, "logits": self.logits,
                  "images": self.images, "ids": np.asarray(self.ids, dtype=str),
                  **{f"cam:{m}": c.astype(np.float16) for m, c in self.cams.items()}}
        for name in ("nucleus", "cell"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        np.savez_compressed(out / "arrays.npz", **arrays)
        for name in FRAMES:
            frame = getattr(self, name)
            if frame is not None:
                frame.to_csv(out / f"{name}.csv", index=False)
        write_json(out / "meta.json", {"key": self.key, "fold": self.fold, **self.meta})
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ModelExplanation:
        """Read what :meth:`save` wrote."""
        f = Path(folder)
        meta = json.loads((f / "meta.json").read_text(encoding="utf-8"))
        with np.load(f / "arrays.npz", allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
        frames = {n: pd.read_csv(f / f"{n}.csv", dtype={"id": str})
                  for n in FRAMES if (f / f"{n}.csv").is_file()}
        return cls(meta.pop("key"), int(meta.pop("fold")), [str(i) for i in a["ids"]],
                   a["labels"], a["targets"], a["logits"], a["images"], a.get("nucleus"),
                   a.get("cell"), {k[4:]: v.astype(np.float32) for k, v in a.items()
                                   if k.startswith("cam:")},
                   **frames, meta=meta)


def test_indices(run, dataset, max_images: int | None = None, seed: int = 0) -> np.ndarray:
    """Dataset indices of the run's test images (a seeded subset of ``max_images``).

    Raises
    ------
    ValueError
        A test image is missing from ``dataset``, or has other pixels than the
        run's (by the fingerprints its record keeps).
    """
    from leukolib.data.fingerprint import image_fingerprint

    ids = [str(i) for i in run.saved_logits()["test_ids"]]
    where = {str(i): k for k, i in enumerate(dataset.ids)}
    missing = [i for i in ids if i not in where]
    if missing:
        raise ValueError(f"{dataset.name}: {len(missing)} of the run's test images are not in "
                         f"the dataset (e.g. {missing[0]!r}); load the dataset the run was "
                         "trained on, with the same size limits")
    idx = np.asarray([where[i] for i in ids], dtype=np.int64)
    if max_images is not None and len(idx) > max_images:
        idx = np.sort(np.random.default_rng(seed).choice(idx, int(max_images), replace=False))
    prints = (run.record.get("dataset") or {}).get("fingerprints") or {}
    for i in idx:
        sid = str(dataset.ids[i])
        if sid in prints and prints[sid] != image_fingerprint(dataset[int(i)].image):
            raise ValueError(f"{dataset.name}: test image {sid} has other pixels than the "
                             f"run's ({Path(run.run_dir).name}); load the dataset it was "
                             "trained on")
    return idx


def _settings(prof: Profile, methods: Sequence[str], seed: int, faithfulness: bool,
              sanity: bool, cascade: bool, layer: str) -> dict[str, Any]:
    e = prof.explanation
    return {"methods": list(methods), "layer": layer, "seed": int(seed),
            "faithfulness": faithfulness,
            "sanity": sanity, "cascade": cascade, "road_percentiles": list(e.road_percentiles),
            "curve_steps": int(e.curve_steps), "max_images": e.max_images,
            "random_draws": RANDOM_DRAWS if faithfulness else 0}


def explain_run(
    run,
    dataset,
    methods: str | Sequence[str] = "all",
    profile: str | Profile = "cpu",
    seed: int = 0,
    fold: int | None = None,
    faithfulness: bool = True,
    sanity: bool = True,
    cascade: bool = False,
    batch_size: int = 16,
    cache: str | os.PathLike | None = None,
    layer: str = "layer4",
) -> ModelExplanation:
    """Explain one run's model on its test images (see the module's description).

    Parameters
    ----------
    run : ClassifierRun
    dataset : Dataset
        The dataset the run was trained on (its test ids are looked up).
    methods : str or sequence of str
    profile : str or Profile
        ``explanation.max_images``, ROAD percentiles and curve steps.
    seed : int
        Of the image subset, ROAD's noise, random maps and randomization.
    fold : int, optional
        Default: the run's best fold.
    faithfulness, sanity, cascade : bool
        Which measures to compute (``cascade``: layer-by-layer randomization).
    batch_size : int
    cache : path, optional
        Folder to save to, and to reuse when it holds the same computation.
    layer : str
        The ResNet stage whose last block the maps look at (the paper's
        ``"layer4"``; see :func:`~leukolib.explain.cams.target_layer`).
    """
    prof = get_profile(profile)
    names = resolve_methods(methods)
    fold = run.best_fold if fold is None else int(fold)
    idx = test_indices(run, dataset, prof.explanation.max_images, seed)
    ids = [str(dataset.ids[i]) for i in idx]
    meta = jsonable({"format": FORMAT, "run": Path(run.run_dir).name, "config": run.config,
                     "images": ids,
                     **_settings(prof, names, seed, faithfulness, sanity, cascade, layer)})
    if cache is not None and (Path(cache) / "meta.json").is_file():
        done = ModelExplanation.load(cache)
        same = {k: v for k, v in done.meta.items()
                if k not in ("mask_source", "grid")} == jsonable(meta)
        if same and done.fold == fold:
            return done
    samples = [dataset[int(i)] for i in idx]
    # the run's own segmenter, given the samples (an "oracle" run reads their ground truth)
    source = run.mask_source
    prep = run.prepare([s.image for s in samples],
                       None if source is None else [source.mask(s) for s in samples])
    have_gt = all(s.nucleus is not None for s in samples)
    nucleus = (np.stack([w(s.nucleus) for w, s in zip(prep.warp, samples, strict=True)])
               if have_gt else (np.stack(prep.masks) if prep.masks is not None else None))
    cell = None
    if have_gt and all(s.cytoplasm is not None for s in samples):
        cell = np.stack([w(s.nucleus | s.cytoplasm) for w, s in zip(prep.warp, samples,
                                                                     strict=True)])
    meta["mask_source"] = "ground truth" if have_gt else ("segmenter" if nucleus is not None
                                                          else "none")
    fast = run.inference_model(fold)  # batch norms folded: the same maps, sooner
    batch = compute_cams(fast, prep.x, names, batch_size=batch_size, layer=layer)
    meta["grid"] = list(batch.grid)
    out = ModelExplanation(run.key, fold, ids, np.asarray(dataset.labels)[idx], batch.targets,
                           batch.logits, np.stack(prep.images), nucleus, cell, batch.cams,
                           meta=meta)
    if nucleus is not None:
        out.localization = localization_scores(batch.cams, nucleus, cell, ids, batch.grid)
    if faithfulness:
        out.faithfulness, out.curves = faithfulness_scores(
            fast, prep.x, batch.cams, batch.targets, ids, prof.explanation.road_percentiles,
            prof.explanation.curve_steps, seed, batch_size, grid=batch.grid,
            n_draws=RANDOM_DRAWS)
    if sanity:
        out.sanity = sanity_check(run.model(fold), prep.x, batch.targets, names, batch.cams,
                                  cascade, ids, seed, batch_size, layer)
    for name in FRAMES:
        frame = getattr(out, name)
        if frame is not None:
            frame.insert(0, "model", run.key)
    if cache is not None:
        out.save(cache)
    return out
