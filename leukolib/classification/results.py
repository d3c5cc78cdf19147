"""A finished classifier run's numbers: the logits file, the test metrics, the summary.

:func:`finish_run` is the last step of
:func:`~leukolib.classification.training.train_classifier` and of
:func:`~leukolib.classification.merge.merge_classifier_runs`; it reads nothing
but the record and the folds' files, so both write the same run. It gathers the
folds' logits into ``logits.npz``:

=================  ==============  ===============================================
array              shape           what
=================  ==============  ===============================================
``test_ids``       (N,)            the hold-out test images
``test_labels``    (N,)
``test_logits``    (F, N, C)       every fold model's logits on them
``oof_ids``        (M,)            the training-validation images
``oof_labels``     (M,)
``oof_logits``     (M, C)          each by the fold model that held it out
``oof_folds``      (M,)            which fold that was (temperature scaling fits
                                   on these, fold by fold)
``class_names``    (C,)
=================  ==============  ===============================================

and scores the test split: the **fold average** (the mean of the folds'
logits, the model a reader would deploy) with the exact (Clopper-Pearson)
interval of its accuracy, and each fold model alone (mean and standard
deviation over folds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leukolib.metrics import classification_metrics
from leukolib.runs import RunDirectory, now
from leukolib.stats import proportion_ci

__all__ = ["LOGITS", "finish_run", "score_logits"]

#: The logits file of a complete run.
LOGITS = "logits.npz"


def score_logits(
    labels: np.ndarray, logits: np.ndarray, class_names, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Classification metrics of logits, with the exact interval of the accuracy.

    ``accuracy_ci`` is the Clopper-Pearson 95 % interval of the share of
    images right (:func:`leukolib.stats.proportion_ci`), never of zero width;
    each class's recall has its own (``per_class[name]["recall_ci"]``).
    ``n_boot`` and ``seed`` are unused (an exact interval needs no
    resampling), kept for callers.

    Examples
    --------
    >>> m = score_logits(np.array([0, 1, 1]), np.array([[2., 0], [0, 1], [1, 0]]), ["a", "b"])
    >>> round(m["accuracy"], 3), m["confusion"], [round(x, 3) for x in m["accuracy_ci"]]
    (0.667, [[1, 0], [1, 1]], [0.094, 0.992])
    """
    pred = np.asarray(logits).argmax(1)
    labels = np.asarray(labels)
    m = classification_metrics(labels, pred, list(class_names))
    m["accuracy_ci"] = list(proportion_ci(int((pred == labels).sum()), len(labels)))
    m["n"] = int(len(labels))
    return m


def _images(record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run's image ids, their labels and the test split's indices, from its record."""
    ids = np.array(record["config"]["dataset"]["ids"])
    position = {name: i for i, name in enumerate(ids.tolist())}
    test = np.array([position[name] for name in record["split"]["test_ids"]], np.int64)
    return ids, np.asarray(record["dataset"]["labels"], np.int64), test


def finish_run(record: dict[str, Any], rundir: RunDirectory, call_seconds: float) -> None:
    """Assemble ``logits.npz``, score the test split, summarise, mark the run complete.

    Parameters
    ----------
    record : dict
        The run's record with every fold (and the dataset's ``labels``, one
        per id of ``config["dataset"]["ids"]``); completed in place and written.
    rundir : RunDirectory
        Holding every fold's ``fold_NN.npz``.
    call_seconds : float
        The duration of the call that finishes the run (``timings``).
    """
    from leukolib.classification.training import load_fold_logits

    record["folds"].sort(key=lambda f: f["fold"])
    names = list(record["config"]["class_names"])
    ids, y, test = _images(record)
    n_classes = len(names)
    test_logits, oof_idx, oof_logits, oof_folds = [], [], [], []
    for f in record["folds"]:
        z = load_fold_logits(rundir, f["fold"])
        test_logits.append(z["test_logits"].reshape(len(test), n_classes))
        oof_idx.append(z["val_idx"])
        oof_logits.append(z["val_logits"].reshape(len(z["val_idx"]), n_classes))
        oof_folds.append(np.full(len(z["val_idx"]), f["fold"]))
    order = np.argsort(np.concatenate(oof_idx), kind="stable")
    oof_i = np.concatenate(oof_idx)[order]
    oof = np.concatenate(oof_logits)[order]
    stacked = np.stack(test_logits)
    np.savez(rundir.path / LOGITS, test_ids=ids[test], test_labels=y[test],
             test_logits=stacked.astype(np.float32), oof_ids=ids[oof_i], oof_labels=y[oof_i],
             oof_logits=oof.astype(np.float32),
             oof_folds=np.concatenate(oof_folds)[order], class_names=np.array(names))
    avg = stacked.mean(0)
    record["test"] = score_logits(y[test], avg, names, seed=record["config"]["seed"])
    record["test"]["ids"] = ids[test].tolist()
    record["test"]["labels"] = y[test].tolist()
    record["test"]["pred"] = avg.argmax(1).tolist()
    record["oof"] = classification_metrics(y[oof_i], oof.argmax(1), names)
    val = np.array([f["best_val_acc"] for f in record["folds"]])
    per_fold = np.array([f["test"]["accuracy"] for f in record["folds"]])
    best = int(np.argmax(val))  # first best: ties go to the lower fold
    record["summary"] = {
        "val_acc_mean": float(val.mean()), "val_acc_std": float(val.std(ddof=1)) if len(val) > 1
        else 0.0, "val_acc_best": float(val.max()), "best_fold": int(record["folds"][best]["fold"]),
        "test_acc": record["test"]["accuracy"], "test_acc_ci": record["test"]["accuracy_ci"],
        "test_acc_folds_mean": float(per_fold.mean()),
        "test_acc_folds_std": float(per_fold.std(ddof=1)) if len(per_fold) > 1 else 0.0,
        "test_f1_macro": record["test"]["f1"], "test_f1_weighted": record["test"]["f1_weighted"],
    }
    hist = [h for f in record["folds"] for h in f["history"]]
    t = record["timings"]
    t.update(total_seconds=float(sum(t["fold_seconds"]) + sum(t["prepare_seconds"])),
             mean_epoch_seconds=float(np.mean([h["seconds"] for h in hist])),
             last_call_seconds=float(call_seconds))
    record["status"] = "complete"
    record["updated"] = now()
    rundir.write(record)
