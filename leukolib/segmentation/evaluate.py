"""Run a segmentation method over a dataset: metrics, speed and failures.

Per-image metrics are the paper's eq. (1)-(6) (:mod:`leukolib.metrics`);
the summary is their mean and sample standard deviation over the images
that loaded and were segmented. Speed is reported twice:

``images_per_s``
    images / total time spent in ``predict`` (the method alone);
``images_per_s_with_io``
    images / (time loading the samples + time in ``predict``). Loading a
    sample decodes its image **and its ground truth**, so this is the speed of
    an evaluation run; the speed of segmenting image files (decoding the
    image only) is measured by ``benchmarks/bench_handcrafted.py``.

Metric computation is not timed. A sample that fails to load or to be
segmented is recorded in ``failures`` and the run goes on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from leukolib.data.base import Dataset
from leukolib.data.sample import Sample
from leukolib.errors import DatasetError
from leukolib.metrics import SEGMENTATION_METRICS, segmentation_metrics, summarize

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EvaluationResult", "evaluate_dataset"]


@dataclass
class EvaluationResult:
    """Outcome of :func:`evaluate_dataset`.

    Attributes
    ----------
    per_image : list of dict
        One dict per evaluated image: ``id`` and the six metrics
        (``acc, pre, rec, spec, dsc, iou``).
    summary : dict
        ``{metric: {"mean": m, "std": s}}`` (sample std); empty when no
        image could be evaluated.
    images_per_s : float
        Images per second of the method alone (``nan`` when none ran).
    images_per_s_with_io : float
        Images per second including the loading of each sample.
    failures : list of (str, str)
        ``(sample id, reason)`` of every sample that failed to load or predict.
    seconds_predict, seconds_io : float
        Total time spent predicting and loading.
    """

    per_image: list[dict[str, Any]]
    summary: dict[str, dict[str, float]]
    images_per_s: float
    images_per_s_with_io: float
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds_predict: float = 0.0
    seconds_io: float = 0.0

    @property
    def n_images(self) -> int:
        """Number of images evaluated (failures excluded)."""
        return len(self.per_image)

    def to_json_dict(self, dataset_name: str, method: str) -> dict[str, Any]:
        """A JSON-ready record of the run.

        Parameters
        ----------
        dataset_name, method : str
            Written as ``dataset`` and ``method``.

        Returns
        -------
        dict
            ``dataset, method, n_images``, the six metric means (``acc`` ...
            ``iou``) and standard deviations (``acc_std`` ...),
            ``images_per_s``, ``images_per_s_with_io``, ``n_failures``,
            ``failures`` (list of ``{"id", "reason"}``) and ``per_image``.
            Means are ``None`` when no image was evaluated.
        """
        out: dict[str, Any] = {"dataset": dataset_name, "method": method, "n_images": self.n_images}
        for m in SEGMENTATION_METRICS:
            s = self.summary.get(m)
            out[m] = s["mean"] if s else None
            out[f"{m}_std"] = s["std"] if s else None
        out["images_per_s"] = _finite_or_none(self.images_per_s)
        out["images_per_s_with_io"] = _finite_or_none(self.images_per_s_with_io)
        out["n_failures"] = len(self.failures)
        out["failures"] = [{"id": i, "reason": r} for i, r in self.failures]
        out["per_image"] = [dict(row) for row in self.per_image]
        return out

    def to_frame(self) -> pd.DataFrame:
        """Per-image metrics as a DataFrame (columns ``id`` and the six metrics)."""
        import pandas as pd

        return pd.DataFrame(self.per_image, columns=["id", *SEGMENTATION_METRICS])

    def summary_frame(self) -> pd.DataFrame:
        """The summary as a DataFrame: rows ``mean`` and ``std``, one column per metric."""
        import pandas as pd

        return pd.DataFrame(self.summary, columns=list(SEGMENTATION_METRICS), index=["mean", "std"])


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or "no message"
    return f"{type(exc).__name__}: {text}"


def evaluate_dataset(
    dataset: Dataset,
    predict: Callable[[Sample], np.ndarray],
    *,
    limit: int | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Segment every sample of ``dataset`` and score it against its nucleus mask.

    Parameters
    ----------
    dataset : Dataset
        A dataset with nucleus masks.
    predict : callable
        ``predict(sample) -> bool mask`` of the sample's image size (e.g.
        :func:`leukolib.segmentation.get_method`'s result).
    limit : int, optional
        Evaluate only the first ``limit`` samples.
    progress : bool
        Show a tqdm progress bar on stderr.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    DatasetError
        When the dataset has no nucleus masks.

    Examples
    --------
    >>> from leukolib.data import load_dataset
    >>> from leukolib.segmentation import get_method
    >>> ds = load_dataset("synthetic", n_images=3, size=128, seed=0)
    >>> res = evaluate_dataset(ds, get_method("handcrafted"), progress=False)
    >>> res.n_images, sorted(res.summary) == sorted(["acc", "pre", "rec", "spec", "dsc", "iou"])
    (3, True)
    """
    from tqdm.auto import tqdm

    if not getattr(dataset, "has_masks", True):
        raise DatasetError(f"dataset {dataset.name!r} has no nucleus masks: nothing to evaluate")
    n = len(dataset) if limit is None else max(0, min(int(limit), len(dataset)))
    try:
        ids = list(dataset.ids)
    except Exception:  # noqa: BLE001 - ids are only used to name failures
        ids = [str(i) for i in range(len(dataset))]

    rows: list[dict[str, Any]] = []
    failures: list[tuple[str, str]] = []
    t_io = t_pred = 0.0
    bar = tqdm(total=n, desc=f"{dataset.name}", unit="img", disable=not progress, file=sys.stderr)
    try:
        for i in range(n):
            sid = ids[i] if i < len(ids) else str(i)
            t0 = time.perf_counter()
            try:
                sample = dataset[i]
            except Exception as exc:  # noqa: BLE001 - report and go on
                failures.append((sid, f"cannot load: {_reason(exc)}"))
                continue
            finally:
                bar.update(1)
            t1 = time.perf_counter()
            try:
                mask = np.asarray(predict(sample))
            except Exception as exc:  # noqa: BLE001 - report and go on
                failures.append((sample.id, f"prediction failed: {_reason(exc)}"))
                continue
            t2 = time.perf_counter()
            if sample.nucleus is None:
                failures.append((sample.id, "no nucleus ground truth"))
                continue
            if mask.shape != sample.nucleus.shape:
                why = f"predicted mask {mask.shape} != ground truth {sample.nucleus.shape}"
                failures.append((sample.id, why))
                continue
            t_io += t1 - t0
            t_pred += t2 - t1
            rows.append({"id": sample.id, **segmentation_metrics(mask, sample.nucleus)})
    finally:
        bar.close()

    k = len(rows)
    return EvaluationResult(
        per_image=rows,
        summary=summarize(rows) if rows else {},
        images_per_s=k / t_pred if k and t_pred > 0 else float("nan"),
        images_per_s_with_io=k / (t_io + t_pred) if k and t_io + t_pred > 0 else float("nan"),
        failures=failures,
        seconds_predict=t_pred,
        seconds_io=t_io,
    )
