"""The committed real-data segmentation results, as the tables the book shows.

``benchmarks/segmentation_report.py`` measures the segmentation on the shared
datasets (JTSC, ALL-IDB2, SMC_IDB) under the ``cpu`` profile and ships the
numbers with the package (:mod:`leukolib.reference`). These functions turn
them into tables: the selection of every default, with the numbers of the
data that chose nothing (leave-one-dataset-out), the results beside the
paper, and the generalization matrix. Each function raises
``FileNotFoundError`` when the results are not shipped (check
:func:`available`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from leukolib import reference
from leukolib.data.datasets import display_names_in
from leukolib.segmentation.ensemble import EnsembleParams
from leukolib.tables import format_interval, paired_view

__all__ = [
    "INCUMBENTS",
    "PARAMETERS",
    "available",
    "default_ensemble",
    "fallback_rates",
    "gate_sentence",
    "generalization",
    "generalization_before",
    "hparams_when",
    "held_out",
    "incumbent_name",
    "overall",
    "paired",
    "paper_table",
    "provenance",
    "reason",
    "results",
    "selection",
    "set_entropies",
    "summary",
    "unet_runs",
]

NAME = "segmentation"

#: The defaults chosen by the protocol, in the order they were chosen.
PARAMETERS: dict[str, str] = {
    "handcrafted": "handcrafted dilation and scaling",
    "threshold": "U-Net probability threshold",
    "fusion_in_domain": "fusion rule, U-Net on its own dataset (out-of-fold)",
    "fusion_cross": "fusion rule, U-Net applied to another dataset",
    "area_opening": "area opening after the fusion",
    "fallback": "fallback to the handcrafted mask alone (its measure and threshold)",
    "fold_fusion": "each fold's own fusion and threshold, chosen on its validation images "
                   "(the run's own images, no-harm rule)",
    "tta": "test-time mirroring: the U-Net also sees each patch's three mirror images "
           "(ensemble, in-domain)",
    "set_gate": "set gate: a whole image set keeps its handcrafted masks (the set's median "
                "U-Net entropy above)",
}

#: What each choice's incumbent is, where it is not the paper's value.
INCUMBENTS: dict[str, str] = {"fold_fusion": "the global rule", "tta": "one view"}


def incumbent_name(parameter: str) -> str:
    """The incumbent of ``parameter`` in words: the paper's value, or :data:`INCUMBENTS`'."""
    return INCUMBENTS.get(parameter, "the paper's value")


def available() -> bool:
    """Whether the reference segmentation results are shipped."""
    return reference.available(NAME)


def provenance() -> str:
    """Where the numbers come from (command, date, commit)."""
    return reference.provenance(NAME)


def results() -> dict[str, Any]:
    """The raw results dictionary."""
    return reference.load(NAME)["results"]


def selection(parameter: str, top: int | None = None) -> pd.DataFrame:
    """Every candidate's mean IoU on every choosing unit, its gains, and the verdict.

    Parameters
    ----------
    parameter : str
        A key of :data:`PARAMETERS`.
    top : int, optional
        Keep only the paper's value (the incumbent), the chosen candidate and
        the ``top`` others of highest mean gain, the passing ones first: the
        fallback has dozens of candidates, too many to read as one table.

    Returns
    -------
    DataFrame
        Indexed by candidate; one column per unit, then ``mean_gain``,
        ``spread``, ``passes`` and ``chosen`` (one row is True).
    """
    rec = results()[parameter]
    t = pd.DataFrame(rec["table"]).set_index("candidate")
    t = t.drop(columns=["min_gain"], errors="ignore")
    t["chosen"] = t.index == rec["chosen"]
    if top is not None and len(t) > top + 2:
        kept = {rec["incumbent"], rec["chosen"]}
        rest = t.drop(index=list(kept), errors="ignore")
        rest = rest.sort_values(["passes", "mean_gain"], ascending=False)
        kept |= set(rest.index[:top])
        t = t[t.index.isin(kept)]
    return t


def reason(parameter: str) -> str:
    """Why the protocol chose what it chose for ``parameter``, in words.

    Parameters
    ----------
    parameter : str
        A key of :data:`PARAMETERS`.

    Returns
    -------
    str
        The report's reason, with the datasets' display names
        (:func:`~leukolib.data.datasets.display_names_in`).

    Examples
    --------
    >>> text = reason("threshold") if available() else "on JTSC"
    >>> "jtsc" in text, "JTSC" in text
    (False, True)
    """
    return display_names_in(results()[parameter]["reason"])


def held_out(parameter: str) -> pd.DataFrame:
    """Leave-one-dataset-out: the choice made without a dataset, and its score on it.

    Returns
    -------
    DataFrame
        ``held out, unit, chosen without it, IoU of that choice, IoU of the
        incumbent (:func:`incumbent_name`), IoU of the library default``.
    """
    rows = pd.DataFrame(results()[parameter]["leave_one_out"])
    rows = rows.rename(columns={"held_out": "held out", "chosen": "chosen without it",
                                "chosen_score": "IoU, chosen without it",
                                "incumbent_score": f"IoU, {incumbent_name(parameter)}",
                                "all_score": "IoU, library default"})
    return rows.drop(columns=["reason", "all_chosen"]).set_index(["held out", "unit"])


def summary(metric: str = "iou") -> pd.DataFrame:
    """In-domain mean (and std) of ``metric``: rows = methods, columns = datasets."""
    s = pd.DataFrame(results()["summary"])
    s = s[s["trained_on"] == s["dataset"]]
    mean = s.pivot_table(index="method", columns="dataset", values=metric, sort=False)
    return mean.reindex(list(dict.fromkeys(s["method"])))


def overall() -> pd.DataFrame:
    """Mean IoU per method and dataset, with the paper's ensemble row (Table 2)."""
    return pd.DataFrame(results()["overall_iou"]).set_index("method")


def paper_table(dataset: str) -> pd.DataFrame:
    """One dataset in the paper's layout (ours, then its rows and Table 4's competitors).

    The image counts are integers (JSON gave them as floats beside the missing ones).
    """
    t = pd.DataFrame(results()["paper_tables"][dataset]).set_index(["source", "method"])
    if "n_images" in t:
        t["n_images"] = pd.to_numeric(t["n_images"]).round().astype("Int64")
    return t


def paired() -> pd.DataFrame:
    """Paired per-image comparisons (ENSEMBLE - DEEP, ENSEMBLE - HM) per dataset and U-Net.

    The verdicts are decided on Holm-adjusted p-values over the table's rows
    (:func:`leukolib.stats.holm_paired`), whatever the shipped file stored.
    """
    from leukolib.stats import holm_paired

    p = pd.DataFrame(results()["paired"])
    cols = ["dataset", "trained_on", "comparison", "mean_diff", "ci_low", "ci_high",
            "wilcoxon_p", "wins", "losses", "ties"]
    names = [tuple(c.split(" - ")) for c in p["comparison"]]
    p = holm_paired(p[cols], names)
    return p.set_index(["dataset", "trained_on", "comparison"])


def generalization(method: str = "ENSEMBLE") -> pd.DataFrame:
    """Mean IoU of ``method``: rows = U-Net trained on, columns = evaluated on (HM as a row)."""
    return pd.DataFrame(results()["generalization"][method]).set_index("trained on")


def generalization_before(method: str = "ENSEMBLE") -> pd.DataFrame | None:
    """:func:`generalization` of the U-Nets that resized every image to one square, if recorded.

    The report keeps the matrices of the report it replaced when that one's
    U-Nets predate the nucleus scale (``results()["before_scale"]``).
    """
    before = results().get("before_scale") or {}
    rows = (before.get("generalization") or {}).get(method)
    return pd.DataFrame(rows).set_index("trained on") if rows else None


def hparams_when(report: Mapping[str, Any] | None = None) -> str:
    """How long the U-Nets of the Table A2 comparison trained, against the report's JTSC run.

    Parameters
    ----------
    report : mapping, optional
        The report's results (default: the shipped ones).

    Returns
    -------
    str
        One sentence, for the page that shows the comparison.

    Examples
    --------
    >>> print(hparams_when({"unet_hparams": {"epochs": 8}, "unet_runs": {"jtsc": {"epochs": 8}}}))
    Both U-Nets trained for 8 epochs, as the report's JTSC run did.
    >>> later = {"unet_hparams": {"epochs": 8}, "unet_runs": {"jtsc": {"epochs": 26}}}
    >>> print(hparams_when(later))  # doctest: +NORMALIZE_WHITESPACE
    Both U-Nets trained for 8 epochs; the report's JTSC run trained for 26, and Table A2 was
    not trained again at that length.
    """
    res = results() if report is None else report
    now = ((res.get("unet_runs") or {}).get("jtsc") or {}).get("epochs")
    hp = res.get("unet_hparams") or {}
    # a comparison without its own epochs was made with the report's own run
    made = hp.get("epochs", now if "comparison" in hp else None)
    if made is None:
        return "The report did not record how long the two U-Nets trained."
    if now is None:
        return f"Both U-Nets trained for {made} epochs."
    if made == now:
        return f"Both U-Nets trained for {made} epochs, as the report's JTSC run did."
    return (f"Both U-Nets trained for {made} epochs; the report's JTSC run trained for {now}, "
            f"and Table A2 was not trained again at that length.")


def fallback_rates() -> pd.DataFrame | None:
    """Share of images on which the ensemble keeps HM alone, per pair and rule (or None).

    Columns are fallback candidates' names (``"iou<0.3"``, ``"entropy>0.35"`` ...).
    """
    rows = results().get("fallback_rates")
    return pd.DataFrame(rows).set_index("unit") if rows else None


def set_entropies() -> pd.DataFrame | None:
    """The median U-Net entropy of every image set (unit) and whether the chosen gate keeps HM.

    Returns
    -------
    DataFrame or None
        Indexed by unit (``"trained on -> evaluated on"``, the dataset alone
        in-domain): ``median entropy (bit)`` and ``handcrafted masks kept``
        under the report's ensemble; ``None`` for a report without a set gate.
    """
    rows = results().get("set_entropies")
    if not rows:
        return None
    t = pd.DataFrame(rows).set_index("unit").rename(columns={"median_entropy":
                                                             "median entropy (bit)"})
    gate = default_ensemble().gate_entropy
    t["handcrafted masks kept"] = (t["median entropy (bit)"] > gate) if gate else False
    return t


def default_ensemble() -> EnsembleParams:
    """The ensemble the report measured, as parameters.

    A parameter the report predates keeps the behaviour it measured: a fallback
    it did not record is off, whatever the library's default is today.
    """
    recorded = dict(results()["defaults"]["ensemble"])
    for name in ("fallback_iou", "fallback_entropy", "gate_entropy"):
        recorded.setdefault(name, 0.0)
    return EnsembleParams(**recorded)


def unet_runs() -> pd.DataFrame:
    """The U-Net runs behind the numbers: out-of-fold IoU, hyper-parameters, time."""
    return pd.DataFrame(results()["unet_runs"]).T


def findings() -> list[str]:
    """What the reference results say, as sentences generated from the numbers.

    One sentence per dataset (the ensemble against HM, DEEP and the paper), per
    paired comparison, per held-out choice and for the generalization matrix,
    so that the book's discussion never carries a typed number. Datasets
    have their display names (:func:`~leukolib.data.datasets.display_names_in`).
    """
    r = results()
    ens = r["defaults"]["ensemble_label"]
    s = summary()
    paper_t2 = overall()
    paper_row = [i for i in paper_t2.index if str(i).startswith("paper")]
    out = [f"The ensemble is {ens}."]
    for d in s.columns:
        theirs = paper_t2.loc[paper_row[0], d] if paper_row and d in paper_t2 else float("nan")
        paper_txt = f"; the paper reports {theirs:.3f}" if theirs == theirs else ""
        out.append(f"{d}: ENSEMBLE {s.loc['ENSEMBLE', d]:.3f} mean IoU, HM {s.loc['HM', d]:.3f}, "
                   f"DEEP {s.loc['DEEP', d]:.3f}{paper_txt}.")
    pairs = paired()
    verdicts = paired_view(pairs)["verdict"]  # as the table reads (TIED where all pairs tie)
    for (d, t, comp), row in pairs.iterrows():
        where = "out-of-fold" if d == t else f"U-Net trained on {t}"
        diff = format_interval(row["mean_diff"], row["ci_low"], row["ci_high"], 4, signed=True)
        out.append(f"{d} ({where}), {comp}: {diff}, {verdicts[(d, t, comp)]}.")
    for key, what in PARAMETERS.items():
        if key not in r:
            continue
        for (held, unit), row in held_out(key).iterrows():
            out.append(f"{what}, {held} held out: chosen without it {row['chosen without it']!r}, "
                       f"IoU on {unit} {row['IoU, chosen without it']:.3f} "
                       f"({incumbent_name(key)} {row[f'IoU, {incumbent_name(key)}']:.3f}).")
    g = generalization("ENSEMBLE")
    hm = g.loc[[i for i in g.index if str(i).startswith("handcrafted")][0]]
    pairs = [(t, e) for t in g.index if not str(t).startswith("handcrafted") for e in g.columns
             if t != e]
    ok = sum(g.loc[t, e] >= hm[e] for t, e in pairs)
    out.append(f"Across datasets the ensemble is at least as good as HM alone on {ok} of "
               f"{len(pairs)} ordered pairs.")
    before = generalization_before("ENSEMBLE")
    if before is not None:
        common = [(t, e) for t, e in pairs if t in before.index and e in before.columns]
        was = sum(before.loc[t, e] >= hm[e] for t, e in common)
        worst_now = min(common, key=lambda te: g.loc[te] - hm[te[1]], default=None)
        if worst_now is not None:
            t, e = worst_now
            out.append(f"With the U-Nets that resized every image to one square it was so on "
                       f"{was} of {len(common)}; the weakest pair now, {t} -> {e}, gives "
                       f"{g.loc[t, e]:.3f} (HM {hm[e]:.3f}, before {before.loc[t, e]:.3f}).")
    rates, col = fallback_rates(), (r.get("fallback") or {}).get("chosen")
    where = default_ensemble().fallback_label()
    if rates is not None and col in rates and where:
        busiest = rates[col].idxmax()
        out.append(f"The per-image fallback keeps the handcrafted mask alone "
                   f"{where.removeprefix(', handcrafted alone ')}: on {rates[col].max():.1%} of "
                   f"the images of {busiest} at most, on {rates[col].min():.1%} at least "
                   f"(before the set gate).")
    elif col == "0":
        out.append("The protocol chose no fallback: the ensemble always lets the U-Net vote.")
    out.extend(_gate_findings())
    return [display_names_in(line) for line in out]


def gate_sentence(report: Mapping[str, Any] | None = None) -> str | None:
    """Which image sets the chosen set gate gives their handcrafted masks, in one sentence.

    Parameters
    ----------
    report : mapping, optional
        The ``results`` of a segmentation report (default: the shipped one).

    Returns
    -------
    str or None
        The sentence, with the datasets' display names; ``None`` for a report
        without a set gate.

    Examples
    --------
    >>> gate_sentence({"set_gate": {}, "defaults": {"ensemble": {"gate_entropy": 0.15}},
    ...                "set_entropies": [{"unit": "jtsc", "median_entropy": 0.08},
    ...                                  {"unit": "bloodseg -> jtsc", "median_entropy": 0.39}]})
    'The set gate (median U-Net entropy above 0.15 bit) keeps the handcrafted masks of 1 of 2 \
image sets: SMC_IDB (BloodSeg) -> JTSC.'
    """
    r = results() if report is None else report
    sets = r.get("set_entropies") or []
    if not sets or "set_gate" not in r:
        return None
    # a report that predates the gate measured without one (as default_ensemble reads it)
    gate = ((r.get("defaults") or {}).get("ensemble") or {}).get("gate_entropy") or 0.0
    if not gate:
        top = max(sets, key=lambda row: row["median_entropy"])
        said = (f"The protocol chose no set gate (no candidate gained without a loss); the "
                f"highest median U-Net entropy of an image set is {top['median_entropy']:.2f} "
                f"bit, on {top['unit']}.")
    else:
        kept = [row["unit"] for row in sets if row["median_entropy"] > gate]
        said = (f"The set gate (median U-Net entropy above {gate:g} bit) keeps the handcrafted "
                f"masks of {len(kept)} of {len(sets)} image sets"
                + (f": {', '.join(kept)}." if kept else "."))
    return display_names_in(said)


def _gate_findings() -> list[str]:
    """The set gate in words: which image sets keep their handcrafted masks, and held out.

    For a gated set, the gate chosen without the set's evaluated dataset either
    gates it too (its threshold chose nothing there) or not (the gain is seen
    only with that dataset): the threshold against the set's median entropy
    decides, the IoUs are the numbers.
    """
    from leukolib.segmentation.selection import gate_candidates

    said = gate_sentence()
    if said is None:
        return []
    ent = set_entropies()
    kept = set(ent.index[ent["handcrafted masks kept"]])
    gates = {label: p.gate_entropy for label, p in gate_candidates().items()}
    held, missed = [], []
    for (h, u), row in held_out("set_gate").iterrows():
        label = row["chosen without it"]
        if u not in kept or label not in gates:
            continue
        gated = bool(gates[label]) and ent.loc[u, "median entropy (bit)"] > gates[label]
        name = "no gate" if not gates[label] else repr(label)
        if gated:
            held.append(f"{u} ({h} held out: {name}, {row['IoU, chosen without it']:.3f})")
        else:
            missed.append(f"{u} ({h} held out: {name}, {row['IoU, chosen without it']:.3f} "
                          f"against {row['IoU, library default']:.3f})")
    out = [said]
    if held:
        out.append("Chosen without the dataset of the pair, the protocol still keeps the "
                   "handcrafted masks of " + ", ".join(held) + ": that threshold chose nothing "
                   "there, though the gate's measure was designed after seeing the pair.")
    if missed:
        out.append("Chosen without the dataset of the pair, the protocol does not keep the "
                   "handcrafted masks of " + ", ".join(missed)
                   + ": the gain there is seen only with that dataset.")
    return out
