"""Results tables of the classifiers: the grid, the paper's layouts, paired tests.

Every table takes run records (``train_grid``'s return value, or the
``run.json`` of each run) and, where they compare models, compares them on
the **same test images**: McNemar's test on the images where exactly one of
the two is right (:func:`leukolib.stats.mcnemar`). A table of such tests is
one family: its p-values are Holm-adjusted over its rows, the verdicts are
decided on the adjusted ones, and the table's note (``attrs["note"]``,
shown in its caption by :func:`leukolib.tables.styled`) says so.

* :func:`grid_table`: one row per model: validation accuracy over folds,
  the best fold's (the paper's Table 5 number), the test accuracy of the
  fold average with its exact (Clopper-Pearson) interval, macro and
  weighted F1;
* :func:`table5_beside_paper`, :func:`table6_beside_paper`: ours in the paper's
  layouts, its numbers beside;
* :func:`segmented_vs_raw`: each segmented model against its raw twin;
* :func:`against`: every model against one reference (e.g. the colour-only
  baseline);
* :func:`across_splits`: the model chosen on validation, on several test
  splits (one classification report per seed);
* :func:`across_settings`: the same models trained under several settings
  (folds, epochs) on the same test splits, and what validation says of each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from leukolib.classification.best import best_model
from leukolib.stats import holm, holm_note, mcnemar, mcnemar_verdict

__all__ = [
    "accuracies",
    "across_settings",
    "across_splits",
    "against",
    "committed",
    "committed_settings",
    "committed_splits",
    "committed_tables",
    "report_profile",
    "describe_input",
    "grid_table",
    "holm_mcnemar",
    "load_records",
    "predictions",
    "reanalysis_note",
    "segmented_vs_raw",
    "table5_beside_paper",
    "table1",
    "table6_beside_paper",
    "training_setting",
]


def load_records(folder) -> dict[str, dict[str, Any]]:
    """The complete run records in a grid folder, ``key -> record``, in Table 1's order."""
    from pathlib import Path

    from leukolib.classification.grid import grid_keys
    from leukolib.runs import read_json

    out = {}
    for key in grid_keys():
        path = Path(folder) / key / "run.json"
        if path.is_file():
            rec = read_json(path)
            if rec.get("status") == "complete":
                out[key] = rec
    return out


def predictions(result: Mapping[str, Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(test ids, true classes, predicted classes)`` of a run record or a baseline result."""
    test = result["test"]
    return list(test["ids"]), np.asarray(test["labels"]), np.asarray(test["pred"])


def grid_table(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model: validation and test accuracy, interval, F1.

    Columns: ``input, activation, head, val acc (mean), val acc (std), val acc
    (best fold), test acc, CI low, CI high, test acc (folds mean), F1 macro,
    F1 weighted``; the index is the model key.
    """
    rows = {}
    for key, r in records.items():
        s, c = r["summary"], r["config"]
        rows[key] = {"input": c["input"], "activation": c["act"], "head": c["head"],
                     "val acc (mean)": s["val_acc_mean"], "val acc (std)": s["val_acc_std"],
                     "val acc (best fold)": s["val_acc_best"], "test acc": s["test_acc"],
                     "CI low": s["test_acc_ci"][0], "CI high": s["test_acc_ci"][1],
                     "test acc (folds mean)": s["test_acc_folds_mean"],
                     "F1 macro": s["test_f1_macro"], "F1 weighted": s["test_f1_weighted"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def accuracies(records: Mapping[str, Mapping[str, Any]],
               baselines: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Test accuracy and its interval of every model, then of every baseline (one row each)."""
    rows = {k: {"test acc": r["test"]["accuracy"], "CI low": r["test"]["accuracy_ci"][0],
                "CI high": r["test"]["accuracy_ci"][1]} for k, r in records.items()}
    for name, b in (baselines or {}).items():
        rows[f"{name} baseline"] = {"test acc": b["test"]["accuracy"],
                                    "CI low": b["test"]["accuracy_ci"][0],
                                    "CI high": b["test"]["accuracy_ci"][1]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def table5_beside_paper(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The paper's Table 5 layout: best validation accuracy over the folds, ours and its.

    Ours for every model of the grid; the paper gives four of the eight.
    """
    from leukolib import paper
    from leukolib.tables import beside_paper

    ours = pd.DataFrame({"val_acc_best_fold": {k: r["summary"]["val_acc_best"]
                                               for k, r in records.items()}})
    return beside_paper(ours, paper.reported(table="5"), ["val_acc_best_fold"], label="model")


def table6_beside_paper(records: Mapping[str, Mapping[str, Any]],
                        baselines: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The paper's Table 6 layout: mean validation accuracy, baselines and the best CNN.

    Ours: each baseline and the paper's proposed model
    (``segmented-mish-medium``) when it was trained, else the best model.
    """
    from leukolib import paper
    from leukolib.tables import beside_paper

    rows = {f"{name} baseline": {"val_acc": b["val_acc_mean"]} for name, b in baselines.items()}
    key = "segmented-mish-medium" if "segmented-mish-medium" in records else best_model(records)
    rows[key] = {"val_acc": records[key]["summary"]["val_acc_mean"]}
    return beside_paper(pd.DataFrame.from_dict(rows, orient="index"),
                        paper.reported(table="6"), ["val_acc"], label="method")


def _aligned(a: Mapping[str, Any], b: Mapping[str, Any]):
    ids_a, y, pred_a = predictions(a)
    ids_b, _, pred_b = predictions(b)
    if sorted(ids_a) != sorted(ids_b):
        raise ValueError("the two results are not on the same test images")
    order = {i: k for k, i in enumerate(ids_b)}
    return y, pred_a, pred_b[[order[i] for i in ids_a]]


def holm_mcnemar(table: pd.DataFrame, names: tuple[str, str], only: tuple[str, str],
                 p: str = "McNemar p") -> pd.DataFrame:
    """A table of McNemar tests with Holm-adjusted p-values and the verdicts decided on them.

    Parameters
    ----------
    table : DataFrame
        One test per row.
    names : (str, str)
        The two sides, in the verdicts.
    only : (str, str)
        The columns counting the images only the first (second) side got right.
    p : str
        The column of raw p-values (kept); ``Holm p`` follows it.

    Returns
    -------
    DataFrame
        A copy with ``Holm p`` and ``verdict`` (:func:`leukolib.stats.mcnemar_verdict`
        on the adjusted p); ``attrs["note"]`` names the correction.

    Examples
    --------
    >>> t = pd.DataFrame({"a only": [0, 9], "b only": [4, 0], "McNemar p": [0.125, 0.004]})
    >>> h = holm_mcnemar(t, ("a", "b"), ("a only", "b only"))
    >>> h["Holm p"].tolist(), h["verdict"].tolist()
    ([0.125, 0.008], ['no significant difference', 'a better'])
    """
    out = table.copy()
    adjusted = holm(out[p].astype(float)) if len(out) else np.zeros(0)
    out.insert(list(out.columns).index(p) + 1, "Holm p", adjusted)
    out["verdict"] = [mcnemar_verdict(int(a), int(b), float(q), names)
                      for a, b, q in zip(out[only[0]], out[only[1]], adjusted, strict=True)]
    out.attrs["note"] = holm_note(int(np.isfinite(adjusted).sum()), "McNemar p-values")
    return out


def segmented_vs_raw(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Each segmented model against its raw twin (same activation and head), same test images.

    Columns: ``segmented``, ``raw`` (test accuracies), ``difference``,
    ``segmented only right``, ``raw only right``, ``McNemar p``, ``Holm p``
    (adjusted over the table's rows) and ``verdict`` (on the adjusted p,
    :func:`holm_mcnemar`).
    """
    rows = {}
    for key, r in records.items():
        if not key.startswith("segmented-"):
            continue
        twin = "raw-" + key.split("-", 1)[1]
        if twin not in records:
            continue
        y, pa, pb = _aligned(r, records[twin])
        t = mcnemar(y, pa, pb)
        rows[key.split("-", 1)[1]] = {
            "segmented": float((pa == y).mean()), "raw": float((pb == y).mean()),
            "difference": float((pa == y).mean() - (pb == y).mean()),
            "segmented only right": t["a_right_b_wrong"], "raw only right": t["a_wrong_b_right"],
            "McNemar p": t["p"]}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[
        "segmented", "raw", "difference", "segmented only right", "raw only right", "McNemar p"])
    frame.index.name = "activation-head"
    return holm_mcnemar(frame, ("segmented", "raw"), ("segmented only right", "raw only right"))


def against(results: Mapping[str, Mapping[str, Any]], reference: Mapping[str, Any],
            name: str = "reference") -> pd.DataFrame:
    """Every result against one reference on the same test images (McNemar).

    Columns: ``accuracy``, ``<name> accuracy``, ``only model right``,
    ``only <name> right``, ``McNemar p``, ``Holm p`` (adjusted over the
    table's rows) and ``verdict`` (on the adjusted p, :func:`holm_mcnemar`).
    """
    rows = {}
    for key, r in results.items():
        y, pa, pb = _aligned(r, reference)
        t = mcnemar(y, pa, pb)
        rows[key] = {"accuracy": float((pa == y).mean()), f"{name} accuracy":
                     float((pb == y).mean()), "only model right": t["a_right_b_wrong"],
                     f"only {name} right": t["a_wrong_b_right"], "McNemar p": t["p"]}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[
        "accuracy", f"{name} accuracy", "only model right", f"only {name} right", "McNemar p"])
    frame.index.name = "model"
    return holm_mcnemar(frame, ("model", name), ("only model right", f"only {name} right"))


def table1(num_classes: int, arch: str = "resnet50") -> pd.DataFrame:
    """The paper's Table 1: the eight networks, their heads, parameters and activations.

    Examples
    --------
    >>> t = table1(3)
    >>> t.loc["segmented-mish-medium", "head layers"], int(t["mish modules"].max())
    ('2048 → 1024 → 512 → 3', 19)
    """
    from leukolib.classification.grid import GRID
    from leukolib.classification.models import HEADS, build_classifier, count_activations

    rows = {}
    built: dict[tuple[str, str], tuple[int, dict[str, int]]] = {}
    for inp, act, head in GRID:
        if (act, head) not in built:
            m = build_classifier(num_classes, head, act, arch=arch)
            built[act, head] = (sum(p.numel() for p in m.parameters()), count_activations(m))
        n, counts = built[act, head]
        width = 2048 if arch == "resnet50" else 512
        rows[f"{inp}-{act}-{head}"] = {
            "input": inp, "activation": act, "head": head,
            "head layers": " → ".join(str(w) for w in (width, *HEADS[head], num_classes)),
            "parameters (M)": n / 1e6, "relu modules": counts["relu"],
            "mish modules": counts["mish"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def across_splits(results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The model chosen on validation accuracy, and what it scores on each test split.

    Each result is a classification report of one dataset (what
    ``benchmarks/classification_report.py`` writes), the seeds differing, so
    each has its own test split. Per split: the model with the best mean
    validation accuracy (overall, among segmented and among raw models), its
    test accuracy with the interval, the two baselines', and, for scale only,
    the highest test accuracy of the eight (chosen on the test split, never a
    result).

    Parameters
    ----------
    results : sequence of mapping
        The reports, one per split.

    Returns
    -------
    DataFrame
        One row per split, indexed by its seed; ``setting`` (folds and epochs)
        where the reports record their configuration.

    Raises
    ------
    ValueError
        Reports trained under several settings: the spread over the splits
        would include the settings' difference (:func:`across_settings`
        compares settings).

    Examples
    --------
    >>> row = {"model": "segmented-relu-linear", "val acc (mean)": 0.9, "test acc": 0.8,
    ...        "CI low": 0.6, "CI high": 0.9}
    >>> r = {"command": "... --seed 3 ...", "grid": {"n_test": 5, "table": [row]}}
    >>> across_splits([r])[["best by validation", "its test acc"]].values.tolist()
    [['segmented-relu-linear', 0.8]]
    """
    rows = {}
    settings = {_report_setting(r) for r in results}
    if len(settings) > 1:  # the splits' spread would mix in the settings' difference
        raise ValueError("reports trained under several settings "
                         f"({', '.join(sorted(map(str, settings)))});"
                         " compare settings with across_settings")
    for r in results:
        table = pd.DataFrame(r["grid"]["table"]).set_index("model")
        seed = _seed(r, len(rows))
        row: dict[str, Any] = {"n test": r["grid"].get("n_test")}
        if settings != {None}:
            row["setting"] = _report_setting(r)
        row.update(_chosen(table))
        for kind in ("segmented", "raw"):
            part = table[table.index.str.startswith(kind + "-")]
            if len(part):
                row[f"best {kind} (test acc)"] = part.loc[
                    best_model(part["val acc (mean)"].to_dict()), "test acc"]
        for name, b in (r.get("baselines") or {}).items():
            row[f"{name} baseline (test acc)"] = b["test_acc"]
        row["highest test acc of the eight"] = table["test acc"].max()
        rows[seed] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "seed"
    return out


def _setting_name(cfg: Mapping[str, Any]) -> str:
    """A configuration's folds and epochs in words: the name of its training setting."""
    return f"{cfg['folds']} folds x {cfg['epochs']} epochs"


def _report_setting(result: Mapping[str, Any]) -> str | None:
    """A report's setting (:func:`_setting_name`; ``None`` when it records no configuration)."""
    cfg = result["grid"].get("config")
    return _setting_name(cfg) if cfg else None


def _seed(result: Mapping[str, Any], default: int) -> int:
    """The seed in a report's command (``--seed N`` or ``--seed=N``); reports store none."""
    import re

    found = re.search(r"--seed[ =](\d+)", str(result.get("command", "")))
    return int(found.group(1)) if found else default


def _chosen(table: pd.DataFrame) -> dict[str, Any]:
    """The model with the best mean validation accuracy of a grid table, and its test scores."""
    best = best_model(table["val acc (mean)"].to_dict())
    return {"best by validation": best, "its val acc": table.loc[best, "val acc (mean)"],
            "its test acc": table.loc[best, "test acc"], "CI low": table.loc[best, "CI low"],
            "CI high": table.loc[best, "CI high"]}


def training_setting(record: Mapping[str, Any]) -> str:
    """How a run was trained, in words: its folds and epochs, and whether the profile chose them.

    Examples
    --------
    >>> cfg = {"profile": "cpu", "folds": 2, "epochs": 15, "batch_size": 16,
    ...        "dataset": {"name": "all_idb2"}}
    >>> training_setting({"config": cfg, "folds": [{"train_ids": ["a"] * 117}]})
    '2 folds x 15 epochs'
    >>> training_setting({"config": {**cfg, "epochs": 30}, "folds": [{"train_ids": ["a"] * 117}]})
    '2 folds x 30 epochs (the cpu profile)'
    >>> syn = {**cfg, "epochs": 8, "dataset": {"name": "synthetic"}}
    >>> training_setting({"config": syn, "folds": [{"train_ids": ["a"] * 225}]})
    '2 folds x 8 epochs (the cpu profile)'
    """
    from leukolib.profiles import get_profile

    cfg = record["config"]
    name = _setting_name(cfg)
    c = get_profile(cfg["profile"]).classification
    n_train = min(len(f["train_ids"]) for f in record["folds"])
    if cfg["folds"] == c.folds and cfg["epochs"] == c.epochs_for(n_train, cfg["batch_size"],
                                                                  cfg["dataset"]["name"]):
        name += f" (the {cfg['profile']} profile)"
    return name


def across_settings(grids: Sequence[Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """The same classifiers trained under several settings (folds, epochs), on the same splits.

    Parameters
    ----------
    grids : sequence of mapping
        Grids of run records (``key -> record``, e.g. :func:`load_records` of
        a folder), any settings and seeds, of one dataset. A seed draws the
        same test split under every setting: checked.

    Returns
    -------
    DataFrame
        One row per setting (:func:`training_setting`), seed and model: the
        mean over the folds of the validation accuracy of the **selected
        epoch** (``val acc (mean)``: it chose the epoch, so a longer run
        has more chances to score high) and of the **last epoch** (chose
        nothing), the test accuracy of the fold average and its interval.
        The profile's setting comes first.

    Raises
    ------
    ValueError
        For runs of several datasets, a seed whose test split differs between
        runs, or a model trained twice under one setting and seed.
    """
    rows, tests, datasets = [], {}, set()
    for grid in grids:
        for key, r in grid.items():
            cfg, seed = r["config"], int(r["config"]["seed"])
            datasets.add(cfg["dataset"]["name"])
            ids = tuple(r["test"]["ids"])
            if tests.setdefault(seed, ids) != ids:
                raise ValueError(f"{key} (seed {seed}): another test split than the other runs "
                                 f"of that seed; settings compare only on the same split")
            last = np.mean([f["history"][-1]["val_acc"] for f in r["folds"]])
            rows.append({"setting": training_setting(r), "seed": seed, "model": key,
                         "val acc (mean)": r["summary"]["val_acc_mean"],
                         "val acc (last epoch)": float(last),
                         "test acc": r["summary"]["test_acc"],
                         "CI low": r["summary"]["test_acc_ci"][0],
                         "CI high": r["summary"]["test_acc_ci"][1], "n test": len(ids)})
    if len(datasets) > 1:
        raise ValueError(f"runs of several datasets ({', '.join(sorted(datasets))})")
    frame = pd.DataFrame(rows)
    if frame.duplicated(["setting", "seed", "model"]).any():
        twice = frame[frame.duplicated(["setting", "seed", "model"], keep=False)]
        raise ValueError("trained twice under one setting and seed: "
                         + ", ".join(sorted({f"{m} (seed {s})" for m, s in
                                             zip(twice["model"], twice["seed"], strict=True)})))
    order = sorted(dict.fromkeys(frame["setting"]), key=lambda n: "profile)" not in n)
    frame["setting"] = pd.Categorical(frame["setting"], order, ordered=True)
    frame = frame.sort_values(["setting", "seed"], kind="stable").reset_index(drop=True)
    frame["setting"] = frame["setting"].astype(str)
    return frame


def _points(x: float) -> str:
    """Signed points with one decimal, never ``-0.0``."""
    return f"{round(float(x), 1) + 0.0:+.1f}"


def _settings_text(long: pd.DataFrame) -> str:
    """What a comparison of settings says, against the first (the profile's) setting."""
    names = list(dict.fromkeys(long["setting"]))
    ref = long[long["setting"] == names[0]].set_index(["seed", "model"])
    parts = []
    for name in names[1:]:
        other = long[long["setting"] == name].set_index(["seed", "model"])
        both = ref.index.intersection(other.index)
        if not len(both):
            continue
        d = {c: 100 * (other.loc[both, c] - ref.loc[both, c])
             for c in ("val acc (last epoch)", "val acc (mean)", "test acc")}
        # accuracies stored as float32: a difference this small is rounding, not an image
        last = d["val acc (last epoch)"].round(4)
        parts.append(
            f"*{name}*, on the {len(both)} (seed, model) pairs trained under both: validation "
            f"accuracy at the last epoch higher for {int((last > 0).sum())}, lower for "
            f"{int((last < 0).sum())}, a mean change of {_points(last.mean())} points "
            f"({_points(last.min())} to {_points(last.max())}); at the selected epoch "
            f"{_points(d['val acc (mean)'].mean())}; on the test splits "
            f"{_points(d['test acc'].mean())}")
    if not parts:
        return ""
    n = int(long["n test"].min())
    return (f"Against *{names[0]}*: " + "; ".join(parts) + f". One test image of {n} is "
            f"{100 / n:.1f} points.")


def committed_settings(name: str) -> dict[str, Any] | None:
    """A shipped :func:`across_settings` comparison: tables, a paragraph, its source.

    ``benchmarks/classification_settings.py`` writes them.

    Parameters
    ----------
    name : str
        The shipped result (``leukolib/reference/<name>.json``).

    Returns
    -------
    dict or None
        ``None`` when not shipped; else ``table``: the validation (last
        epoch) and test accuracy per setting and model, a column per seed;
        ``chosen``: per setting and seed where all eight models were trained,
        the one chosen on validation (as :func:`across_splits` chooses);
        ``text``: a paragraph; ``source``: where it came from.

    Examples
    --------
    >>> committed_settings("classification_nothing_cpu_settings") is None
    True
    """
    from leukolib import reference
    from leukolib.classification.grid import grid_keys

    shipped = committed(name)
    if shipped is None:
        return None
    long = pd.DataFrame(shipped["results"]["rows"])
    table = long.pivot_table(index=["setting", "model"], columns="seed",
                             values=["val acc (last epoch)", "test acc"], sort=False)
    # validation columns first, each in the seeds' numeric order
    table = table[sorted(table.columns, key=lambda c: (c[0] != "val acc (last epoch)", c[1]))]
    table.columns = [f"{v}, seed {s}" for v, s in table.columns]
    chosen = {(setting, seed): _chosen(part.set_index("model"))
              for (setting, seed), part in long.groupby(["setting", "seed"], sort=False)
              if set(part["model"]) == set(grid_keys())}
    frame = pd.DataFrame.from_dict(chosen, orient="index")
    if len(frame):
        frame.index = pd.MultiIndex.from_tuples(frame.index, names=["setting", "seed"])
    return {"table": table, "chosen": frame, "text": _settings_text(long),
            "source": _sourced(reference.provenance(name), shipped)}


def committed(name: str) -> dict[str, Any] | None:
    """A classification result shipped in :mod:`leukolib.reference` (``None`` when absent).

    ``benchmarks/classification_report.py`` writes them; they are package data,
    so an installed leukolib (Colab) renders them without a download.

    Examples
    --------
    >>> committed("classification_nothing_cpu.json") is None
    True
    """
    from leukolib import reference

    stem = name.removesuffix(".json")
    return reference.load(stem) if reference.available(stem) else None


def committed_tuning(name: str = "classification_cpu_tuning") -> dict[str, Any] | None:
    """The ``cpu`` settings re-decided on the tuning smears (``benchmarks/cpu_tuning.py``).

    Returns
    -------
    dict or None
        ``text`` (the decision and its reason), ``table`` (each candidate's
        last-epoch validation accuracy per model and seed, its gains and
        whether it passes the rule), ``source``; ``None`` when not shipped.

    Examples
    --------
    >>> committed_tuning("classification_nothing_cpu_tuning") is None
    True
    """
    from leukolib import reference

    shipped = committed(name)
    if shipped is None:
        return None
    r = shipped["results"]
    table = pd.DataFrame(r["table"]).set_index("setting")
    kept = r["chosen"] == r["incumbent"]
    outcome = "is kept" if kept else f"is replaced by {r['chosen']!r}"
    text = (f"On smears of the tuning range, the setting in force ({r['incumbent']}) {outcome}: "
            f"{r['reason']}. The rule: {r['rule']}.")
    return {"text": text, "table": table, "source": reference.provenance(name)}


def committed_splits(name: str) -> dict[str, Any] | None:
    """A shipped :func:`across_splits` result: its table, a sentence and where it came from.

    ``benchmarks/classification_splits.py`` writes them. ``None`` when not shipped.

    Examples
    --------
    >>> committed_splits("classification_nothing_cpu_splits") is None
    True
    """
    from leukolib import reference

    shipped = committed(name)
    if shipped is None:
        return None
    r = shipped["results"]
    table = pd.DataFrame(r["splits"]).set_index("seed")
    chosen = table["its test acc"]
    trained = f", trained {table['setting'].iloc[0]}" if "setting" in table else ""
    text = (f"Over {len(table)} test splits of {r['dataset']} ({int(table['n test'].iloc[0])} "
            f"images each, one per seed{trained}), the model chosen on validation accuracy scored "
            f"{chosen.min():.3f} to {chosen.max():.3f} on its test split "
            f"(mean {chosen.mean():.3f})")
    colour = [c for c in table.columns if c.startswith("color baseline")]
    if colour:
        text += (f"; the colour-only baseline {table[colour[0]].min():.3f} to "
                 f"{table[colour[0]].max():.3f}")
    return {"source": _sourced(reference.provenance(name), shipped),
            "table": table, "text": text + "."}


def report_profile(result: Mapping[str, Any]) -> str:
    """The profile a shipped report ran under, from its command line (``cpu`` when unnamed).

    Examples
    --------
    >>> report_profile({"command": "python benchmarks/x.py --profile smoke"})
    'smoke'
    """
    m = re.search(r"--profile[ =](\w+)", str(result.get("command", "")))
    return m.group(1) if m else "cpu"


def committed_tables(result: Mapping[str, Any]) -> dict[str, Any]:
    """The tables of a committed ``classification_report`` result, and where it came from.

    Returns
    -------
    dict
        ``source``: one line (what ran, on what, when, at which commit);
        ``tables``: title -> DataFrame, for the steps the result holds.
    """
    g = result.get("grid") or {}
    cfg, d = g.get("config") or {}, result.get("dataset") or {}
    source = (f"{d.get('name')}: {d.get('n_images')} images ({', '.join(d.get('classes', []))}); "
              f"{cfg.get('arch')} at {cfg.get('image_size')} px, {cfg.get('folds')} folds x "
              f"{cfg.get('epochs')} epochs, {cfg.get('weights')} weights, learning rate "
              f"{cfg.get('lr')}; {g.get('n_test')} test images. From `{result.get('command')}`, "
              f"{str(result.get('date', ''))[:10]}, commit {result.get('commit')}")
    source = _sourced(source, result) + "."
    from leukolib import reference

    seed = _seed(result, 0)
    note = reference.split_note(f"classification_{d.get('name')}_{report_profile(result)}"
                                + (f"_seed{seed}" if seed else "") + ".json")
    source = f"{source} {note}" if note else source
    tables: dict[str, pd.DataFrame] = {}
    if g.get("table"):
        t = pd.DataFrame(g["table"]).set_index("model")
        tables["the eight models"] = t[["val acc (mean)", "val acc (std)", "test acc", "CI low",
                                        "CI high", "F1 macro", "F1 weighted"]]
    if result.get("baselines"):
        tables["baselines (same split)"] = pd.DataFrame({
            f"{k} baseline": {"val acc (mean)": b["val_acc_mean"], "test acc": b["test_acc"],
                              "CI low": b["test_acc_ci"][0], "CI high": b["test_acc_ci"][1]}
            for k, b in result["baselines"].items()}).T
    for key, title, index in (
            ("segmented_vs_raw", "segmented against raw (McNemar)", "activation-head"),
            ("against_color", "every model against the colour-only baseline (McNemar)", "model"),
            ("color", "the best segmented and raw models trained again on grey images", "model")):
        rows = g.get(key) if key == "segmented_vs_raw" else result.get(key)
        if rows:
            tables[title] = _verdicts(pd.DataFrame(rows).set_index(index))
    return {"source": source, "tables": tables}


def _verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """A shipped table of McNemar tests with its verdicts decided here, on Holm-adjusted p-values.

    The shipped tables hold the raw p-values (and no verdict); other tables
    come back as they are.
    """
    if "McNemar p" not in table:
        return table
    table = table.drop(columns=["Holm p", "verdict"], errors="ignore")
    only = [c for c in table.columns if c.endswith(" only right")]
    if len(only) == 2:  # segmented against raw
        return holm_mcnemar(table, ("segmented", "raw"), (only[0], only[1]))
    other = next(c for c in table.columns if c.startswith("only ") and c != "only model right")
    return holm_mcnemar(table, ("model", other.removeprefix("only ").removesuffix(" right")),
                        ("only model right", other))


def reanalysis_note(shipped: Mapping[str, Any]) -> str:
    """A clause for a shipped result whose intervals were recomputed since (else ``""``).

    ``benchmarks/reanalyse_intervals.py`` records it in the file's provenance.

    Examples
    --------
    >>> r = {"reanalysis": {"command": "python reanalyse.py", "date": "2026-12-04"}}
    >>> reanalysis_note({"provenance": r})
    'intervals recomputed from the stored counts by `python reanalyse.py`, 2026-12-04'
    """
    record = (shipped.get("provenance") or shipped).get("reanalysis")
    if not record:
        return ""
    return f"intervals recomputed from the stored counts by `{record['command']}`, {record['date']}"


def _sourced(source: str, shipped: Mapping[str, Any]) -> str:
    """``source``, and the reanalysis of its intervals where there was one."""
    note = reanalysis_note(shipped)
    return f"{source}; {note}" if note else source


def describe_input(config: Mapping[str, Any]) -> str:
    """In words, what a run's networks saw (for the book's prose).

    Examples
    --------
    >>> cfg = {"crop": None, "crop_min": 0.0, "resize": 72, "image_size": 64, "color": "rgb",
    ...        "arch": "resnet50"}
    >>> print(describe_input(cfg))  # doctest: +NORMALIZE_WHITESPACE
    the whole image, its shorter side resized to 72 px and the centre 64 px kept, in colour,
    for a resnet50
    """
    if config.get("crop") is None:
        what = "the whole image"
    elif config.get("crop_min"):
        what = (f"a square window of {config['crop_min']:.3g} of the image's shorter side around "
                "the nucleus (larger only for a nucleus that does not fit with a margin of "
                f"{config['crop']:.0%} of its box), so every nucleus keeps its scale")
    else:
        what = (f"the square around the nucleus's box with a margin of {config['crop']:.0%}, "
                "so the nucleus fills the frame")
    size = (f"its shorter side resized to {config['resize']} px and the centre "
            f"{config['image_size']} px kept" if config["resize"] != config["image_size"]
            else f"resized to {config['image_size']} px")
    color = "in grey" if config.get("color") == "gray" else "in colour"
    return f"{what}, {size}, {color}, for a {config.get('arch', 'resnet50')}"
