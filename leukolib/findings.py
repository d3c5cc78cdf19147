"""What the committed real-data results say, in words: per chapter, and the paper's claims.

The benchmarks ship their results with the package (:mod:`leukolib.reference`).
This module turns them into sentences for the chapters' "What we found on real
data" sections (:func:`chapter_findings`) and into the verdicts of chapter 8
(:func:`claims`), so that no number is ever typed into the book's prose: every
number, interval, adjusted p-value and verdict below is read from a shipped
result, and the wording follows the verdicts (a sentence says "better" only
where a test, Holm-adjusted within its table, says so).

Every function takes the shipped results as a mapping (name -> payload, as
:func:`shipped` returns) so that a test can change a number and watch the
sentence change.

The verdict of a claim is one of :data:`VERDICTS`:

* **supported**: at least one of our tests (Holm-adjusted within its table)
  agrees with the claim and none goes against it; for a claim about each of
  several things (the ensemble beats *each* part), every one of them on every
  dataset; for a claimed number, our exact interval lies on its side;
* **not supported**: a test goes against the claim (also when others agree:
  the tests disagree), or no test agrees and our estimates point the other
  way at least as often as the claim's way (a tie points neither way), or our
  interval lies wholly on the wrong side of the paper's number;
* **cannot tell**: no test is significant and our estimates lean the claim's
  way, or the claim holds on some datasets and no test goes against it
  elsewhere, or the paper's number lies inside an interval too wide to
  resolve it.

Examples
--------
>>> from leukolib.findings import VERDICTS, display_name
>>> VERDICTS
('supported', 'not supported', 'cannot tell')
>>> display_name("bloodseg")
'SMC_IDB (BloodSeg)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from leukolib.data.datasets import display_name, display_names_in
from leukolib.stats import ALPHA
from leukolib.tables import format_interval

__all__ = [
    "CHAPTERS",
    "SHIPPED",
    "VERDICTS",
    "CHAPTER_SOURCES",
    "Claim",
    "chapter_details",
    "chapter_findings",
    "chapter_main",
    "claims",
    "claims_table",
    "display_name",
    "images_for_accuracy",
    "shipped",
    "source_line",
    "sources",
    "verdict_summary",
]

VERDICTS = ("supported", "not supported", "cannot tell")

#: The shipped results the findings read (what :func:`shipped` loads).
SHIPPED = (
    "segmentation",
    "classification_all_idb2_cpu",
    "classification_jtsc_cpu",
    "classification_all_idb2_cpu_splits",
    "explain_all_idb2_cpu",
    "explain_jtsc_cpu",
    "robustness",
)

#: The chapters that end with "What we found on real data", and their subject.
CHAPTERS = {
    2: "handcrafted segmentation",
    3: "deep segmentation",
    4: "the ensemble",
    5: "classification",
    6: "explanations",
    7: "clusters and robustness",
}

SEG_SETS = ("jtsc", "all_idb2", "bloodseg")
CLS_SETS = ("all_idb2", "jtsc")


def shipped(names: Sequence[str] = SHIPPED) -> dict[str, dict[str, Any] | None]:
    """The shipped results the findings read (``None`` for one that is not shipped)."""
    from leukolib import reference

    return {n: reference.load(n) if reference.available(n) else None for n in names}


def _results(payload: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A payload's numbers: ``results`` of a reference file, the whole of a flat report."""
    if payload is None:
        return {}
    return payload.get("results", payload) if "provenance" in payload else payload


def _commit(payload: Mapping[str, Any] | None) -> str:
    if payload is None:
        return "?"
    return str((payload.get("provenance") or payload).get("commit", "?"))


def sources(data: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Which shipped file each finding reads, with its commit, date and command.

    A reader sees at once whether the committed results come from one commit.
    """
    data = shipped() if data is None else data
    rows = []
    for name, payload in data.items():
        if payload is None:
            continue
        p = payload.get("provenance") or payload
        rows.append({"file": f"{name}.json", "commit": p.get("commit"),
                     "date": str(p.get("date", ""))[:10], "command": p.get("command")})
    return pd.DataFrame(rows).set_index("file") if rows else pd.DataFrame()


def _ci(mean: float, low: float, high: float, digits: int = 3) -> str:
    return format_interval(mean, low, high, digits)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _share(k: int, n: int) -> str:
    return f"{k} of {n}"


# ------------------------------------------------------------------ segmentation

def _seg(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return _results(data.get("segmentation"))


def _interval(seg: Mapping[str, Any], dataset: str, method: str) -> dict[str, Any] | None:
    for row in seg.get("intervals", []):
        if row["dataset"] == dataset and row["method"] == method:
            return row
    return None


def _paired(seg: Mapping[str, Any], dataset: str, trained_on: str,
            comparison: str) -> dict[str, Any] | None:
    for row in seg.get("paired", []):
        if (row["dataset"], row["trained_on"], row["comparison"]) == (dataset, trained_on,
                                                                       comparison):
            return row
    return None


def _paper_table2() -> pd.Series:
    """The paper's ensemble IoU per dataset (its Table 2)."""
    from leukolib.paper import reported

    return reported(table="2", metric="iou").set_index("dataset")["value"]


def _iou_text(row: Mapping[str, Any]) -> str:
    return _ci(row["mean"], row["ci_low"], row["ci_high"])


def _paired_text(row: Mapping[str, Any]) -> str:
    """``ENSEMBLE better (+0.017 [+0.013, +0.022], Holm p = 5e-27)`` or ``no significant ...``."""
    holm = row.get("wilcoxon_p_holm")
    p = holm if holm is not None else row.get("wilcoxon_p")
    lo, hi = row.get("ci_low"), row.get("ci_high")
    diff = format_interval(row["mean_diff"], lo, hi, 3, signed=True)
    test = ("" if p is None else
            f", {'Holm-adjusted ' if holm is not None else ''}Wilcoxon p = {p:.2g}")
    note = ""
    if row["verdict"] == "no significant difference" and lo is not None and hi is not None:
        if lo > 0 or hi < 0:
            note = "; the mean differs, the image-by-image ranks do not"
        elif p is not None and p < ALPHA:  # the ranks lean one way, the mean's interval does not
            note = "; the signed-rank test sees a difference, the mean's interval holds 0"
    return f"{row['verdict']} ({diff}{test}{note})"


def _generalization(seg: Mapping[str, Any], method: str) -> pd.DataFrame | None:
    rows = (seg.get("generalization") or {}).get(method)
    return pd.DataFrame(rows).set_index("trained on") if rows else None


def _hm_row(frame: pd.DataFrame) -> pd.Series:
    return frame.loc[[i for i in frame.index if str(i).startswith("handcrafted")][0]]


def _cross_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(t, e) for t in frame.index if not str(t).startswith("handcrafted")
            for e in frame.columns if t != e]


def _chapter2(data: Mapping[str, Any]) -> list[str]:
    seg = _seg(data)
    if not seg:
        return []
    out = []
    parts = []
    for d in SEG_SETS:
        row = _interval(seg, d, "HM")
        if row:
            parts.append(f"{display_name(d)} {_iou_text(row)} ({row.get('n', '?')} images)")
    if parts:
        out.append("The handcrafted method (HM) reaches a mean IoU of " + "; ".join(parts)
                   + " (95 % bootstrap intervals over images).")
    hc = seg.get("handcrafted") or {}
    if hc:
        if hc.get("chosen") == hc.get("incumbent"):
            # the reason names the incumbent again ("no candidate beat '...'"): say it once
            reason = str(hc.get("reason")).replace(repr(hc.get("incumbent")), "them")
            out.append(f"The selection protocol kept the paper's settings "
                       f"({hc.get('incumbent')}): {display_names_in(reason)}.")
        else:
            out.append(f"The selection protocol replaced the paper's settings "
                       f"({hc.get('incumbent')}) by {hc.get('chosen')}: "
                       f"{display_names_in(hc.get('reason'))}.")
    return out


def _chapter3(data: Mapping[str, Any]) -> list[str]:
    seg = _seg(data)
    if not seg:
        return []
    out = []
    for d in SEG_SETS:
        deep, hm = _interval(seg, d, "DEEP"), _interval(seg, d, "HM")
        if not deep or not hm:
            continue
        overlap = deep["ci_low"] <= hm["ci_high"] and hm["ci_low"] <= deep["ci_high"]
        rel = ("the two intervals overlap" if overlap else
               "the intervals do not overlap: DEEP is " +
               ("higher" if deep["mean"] > hm["mean"] else "lower"))
        out.append(f"{display_name(d)}: the U-Net (DEEP, out-of-fold) {_iou_text(deep)} "
                   f"beside HM {_iou_text(hm)}; {rel}.")
    hp = seg.get("unet_hparams") or {}
    comp = hp.get("comparison")
    if comp:
        from leukolib.segmentation.reference import hparams_when

        out.append(f"On {display_name(hp.get('dataset', 'jtsc'))}, our U-Net defaults against "
                   f"the paper's Table A2 hyper-parameters (the same folds): "
                   f"{_paired_text(comp).replace('defaults better', 'the defaults better')}. "
                   f"{hparams_when(seg)}")
    g = _generalization(seg, "DEEP")
    pairs = [] if g is None else [te for te in _cross_pairs(g) if pd.notna(g.loc[te])]
    if pairs:
        worst = min(pairs, key=lambda te: g.loc[te])
        out.append(f"Applied to another dataset, the U-Net alone falls as low as "
                   f"{g.loc[worst]:.3f} ({display_name(worst[0])} -> {display_name(worst[1])}, "
                   f"where HM gives {_hm_row(g)[worst[1]]:.3f}).")
    return out


def _chapter4(data: Mapping[str, Any]) -> list[str]:
    seg = _seg(data)
    if not seg:
        return []
    paper = _paper_table2()
    out = []
    label = (seg.get("defaults") or {}).get("ensemble_label")
    if label:
        out.append(f"The ensemble chosen by the protocol: {label}.")
    for d in SEG_SETS:
        ens = _interval(seg, d, "ENSEMBLE")
        if not ens:
            continue
        text = f"{display_name(d)}: ENSEMBLE (out-of-fold) {_iou_text(ens)}"
        if d in paper:
            where = ("inside our interval" if ens["ci_low"] <= paper[d] <= ens["ci_high"] else
                     "above our interval" if paper[d] > ens["ci_high"] else "below our interval")
            text += f"; the paper's {paper[d]:.3f} (Table 2) lies {where}"
        verdicts = []
        for comp in ("ENSEMBLE - HM", "ENSEMBLE - DEEP"):
            row = _paired(seg, d, d, comp)
            if row:
                verdicts.append(f"against {comp.split(' - ')[1]}: {_paired_text(row)}")
        if verdicts:
            verdicts[0] = verdicts[0][0].upper() + verdicts[0][1:]
        out.append(text + (". " + "; ".join(verdicts) if verdicts else "") + ".")
    g = _generalization(seg, "ENSEMBLE")
    if g is not None:
        hm = _hm_row(g)
        pairs = [te for te in _cross_pairs(g) if pd.notna(g.loc[te])]
        rows = {(t, e): _paired(seg, e, t, "ENSEMBLE - HM") or {} for t, e in pairs}
        verdicts = [r.get("verdict") for r in rows.values()]
        better = sum(v == "ENSEMBLE better" for v in verdicts)
        worse = sum(v == "HM better" for v in verdicts)
        if pairs:
            worst = min(pairs, key=lambda te: g.loc[te] - hm[te[1]])
            out.append(f"With the U-Net trained on another dataset, the ensemble against HM "
                       f"alone (paired Wilcoxon, Holm-adjusted): better on {better}, worse on "
                       f"{worse}, no significant difference on {len(pairs) - better - worse} of "
                       f"{len(pairs)} ordered pairs; the weakest, {display_name(worst[0])} -> "
                       f"{display_name(worst[1])}, gives {g.loc[worst]:.3f} against HM's "
                       f"{hm[worst[1]]:.3f}." + _undecided_pairs(rows))
    out.extend(_gate_text(seg))
    return out


def _chapter4_details(data: Mapping[str, Any]) -> list[str]:
    """Chapter 4's sentences on how the defaults were chosen and what bounds them."""
    seg = _seg(data)
    if not seg:
        return []
    return (_fold_text(seg) + _tta_text(seg) + _budget_text(seg) + _ceiling_text(data)
            + _variants_text(data))


def _undecided_pairs(paired: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    """The cross pairs without a verdict, each with its numbers; identical ones named apart.

    ``paired``: each (trained on, evaluated on) pair's ENSEMBLE - HM row.
    """
    rows = [(t, e, r) for (t, e), r in paired.items()
            if r.get("verdict") == "no significant difference"]
    same = [(t, e) for t, e, r in rows if r.get("degenerate") and not r.get("mean_diff")]
    named = [f"{display_name(t)} -> {display_name(e)} {_paired_text(r)}"
             for t, e, r in rows if (t, e) not in same]
    said = ([f"Without a verdict: {'; '.join(named)}."] if named else []) + (
        [f"Identical to HM, image for image: "
         f"{', '.join(f'{display_name(t)} -> {display_name(e)}' for t, e in same)}."]
        if same else [])
    return "".join(f" {x}" for x in said)


def _budget_text(seg: Mapping[str, Any]) -> list[str]:
    """What the epochs of the budget rule changed in the report (``before_budget``), in words."""
    before = seg.get("before_budget") or {}
    rows = (before.get("generalization") or {}).get("ENSEMBLE")
    now = _generalization(seg, "ENSEMBLE")
    if not rows or now is None:
        return []
    old = pd.DataFrame(rows).set_index("trained on")
    sets = [d for d in SEG_SETS if d in now.index and d in old.index]
    was, got = ({d: ((r.get("unet_runs") or {}).get(d) or {}).get("epochs") for d in sets}
                for r in (before, seg))
    epochs = "; ".join(f"{display_name(d)} {was[d]} -> {got[d]}" for d in sets
                       if was[d] is not None and got[d] is not None)
    if not sets or not epochs:
        return []
    own = "; ".join(f"{display_name(d)} {old.loc[d, d]:.4f} -> {now.loc[d, d]:.4f}"
                    for d in sets)
    pairs = [(t, e) for t in sets for e in sets if t != e]
    cross = "; ".join(f"{display_name(t)} -> {display_name(e)} {old.loc[t, e]:.4f} -> "
                      f"{now.loc[t, e]:.4f}" for t, e in pairs)
    return [f"The budget rule of the `cpu` profile set each dataset's U-Net epochs ({epochs}), "
            f"and the report was run again with every default chosen anew: the ensemble's "
            f"out-of-fold mean IoU {own}; across datasets {cross}. Report against report, "
            f"not paired image by image: the paired comparison of the two lengths is the "
            f"U-Net variants' below."]


def _fold_text(seg: Mapping[str, Any]) -> list[str]:
    """Whether each fold's own fusion (chosen on its validation images) was taken, in words."""
    rec = seg.get("fold_fusion") or {}
    table = {r["candidate"]: r for r in rec.get("table") or []}
    if not {"global", "per fold"} <= set(table):
        return []
    sets = [d for d in SEG_SETS if d in table["global"]]
    moves = "; ".join(f"{display_name(d)} {table['global'][d]:.4f} -> {table['per fold'][d]:.4f}"
                      for d in sets)
    picks = []
    for d in sets:
        chosen = [f["chosen"] for f in ((rec.get("runs") or {}).get(d) or {}).get("folds", [])]
        if chosen:
            counts = pd.Series(chosen).value_counts()
            picks.append(f"{display_name(d)} " + ", ".join(
                f"{name} ({k} of {len(chosen)})" for name, k in counts.items()))
    taken = rec.get("chosen") == "per fold"
    out = [f"Each fold's own fusion rule and threshold, chosen on the fold's validation images "
           f"(neither its training nor its test images), against the global rule, in-domain "
           f"mean IoU: {moves}. "
           + (f"Taken by the no-harm rule: {display_names_in(rec['reason'])}." if taken else
              f"Not taken: {display_names_in(rec['reason'])}.")]
    if picks:
        out.append("The folds chose: " + "; ".join(picks) + ".")
    lodo = [r for r in rec.get("leave_one_out") or [] if r["unit"] in sets]
    strict = {r["unit"]: r["chosen"] for r in
              (rec.get("consistent_rule") or {}).get("leave_one_out") or []}
    if lodo:
        said = "; ".join(f"{display_name(r['unit'])} {r['chosen']} ({r['chosen_score']:.4f})"
                         for r in lodo)
        took = [display_name(u) for u, c in strict.items() if c == "per fold"]
        out.append(f"Chosen without each dataset (the other {len(sets) - 1} decide), the rule "
                   f"each held-out dataset gets: {said}. Under the stricter rule of the fixed "
                   f"defaults (a gain on every choosing dataset and a mean gain above the spread "
                   f"of the gains) the held-out choice would be per fold for "
                   + (", ".join(took) if took else "none of them") + ".")
    return out


def _tta_text(seg: Mapping[str, Any]) -> list[str]:
    """Whether the U-Net's test-time mirroring was taken, in words."""
    rec = seg.get("tta") or {}
    table = {r["candidate"]: r for r in rec.get("table") or []}
    if len(table) < 2 or rec.get("incumbent") not in table:
        return []
    one = table[rec["incumbent"]]
    sets = [d for d in SEG_SETS if d in one]
    out = []
    for name, row in table.items():
        if name == rec["incumbent"]:
            continue
        moves = "; ".join(f"{display_name(d)} {one[d]:.4f} -> {row[d]:.4f}" for d in sets)
        out.append(f"Test-time mirroring ({name}) against one view, the ensemble's in-domain "
                   f"mean IoU: {moves}.")
    taken = rec.get("chosen") != rec["incumbent"]
    row = table.get(rec.get("chosen") if taken else next(k for k in table
                                                         if k != rec["incumbent"]))
    why = (f"its mean gain {row['mean_gain']:+.4f} "
           + ("exceeds" if row["mean_gain"] > row["spread"] else "does not exceed")
           + f" the spread of its gains, {row['spread']:.4f}")
    lodo = [display_name(r["unit"]) for r in rec.get("leave_one_out") or []
            if r["chosen"] != rec["incumbent"]]
    harm = (rec.get("no_harm_rule") or {}).get("chosen")
    out.append(("Taken" if taken else "Not taken") + " by the rule of the fixed defaults: "
               + why + "."
               + (f" Chosen without {' or without '.join(lodo)} (the other datasets deciding), "
                  "it would be taken for that dataset." if lodo and not taken else "")
               + (f" The no-harm rule would choose {harm!r}." if harm else ""))
    return out


def _variants_text(data: Mapping[str, Any]) -> list[str]:
    """U-Nets with more capacity or training, on the same folds (``unet_variants_cpu.json``)."""
    res = _results(data.get("unet_variants_cpu"))
    if not res:
        return []
    base, runs = res["incumbent"], res["runs"]
    paired = {(r["variant"], r["dataset"], r["method"]): r for r in res["paired"]}
    times = {(r["variant"], r["dataset"]): r for r in res["training_time"]}
    said, replay = [], []
    for v in res["variants"][1:]:
        parts = []
        for d, run in runs[v].items():
            row, t = paired.get((v, d, "ENSEMBLE")), times.get((v, d))
            parts.append(f"{display_name(d)} ({run['epochs']} epochs) "
                         f"{runs[base][d]['ensemble_iou']:.4f} -> {run['ensemble_iou']:.4f}"
                         + (f", {_paired_text(row)}" if row else "")
                         + (f", training {t['ratio']:.2f} times as long, where the time "
                            f"limit allows {t['limit_seconds'] / t['shipped_seconds']:.2f}"
                            if t else ""))
        units = {r["num_res_units"] for r in runs[v].values()}
        said.append(f"`{v}` (num_res_units {', '.join(map(str, sorted(units)))}): "
                    + "; ".join(parts))
        if runs[v] and all(r.get("continues_incumbent") for r in runs[v].values()):
            replay.append(f"`{v}`")
    b_epochs = sorted({r["epochs"] for r in runs[base].values()})
    b_units = sorted({r["num_res_units"] for r in runs[base].values()})
    library = res.get("library")
    # the variant like the report's runs: the profile's, or (files before "library") the incumbent
    reported = library if "library" in res else base
    shipped = [f"{display_name(d)} {runs[reported][d]['ensemble_iou']:.4f} against the "
               f"report's {row['mean']:.4f}" for d in (runs.get(reported) or {})
               if (row := _interval(_seg(data), d, "ENSEMBLE"))
               and abs(row["mean"] - runs[reported][d]["ensemble_iou"]) >= 5e-5]
    choice = res.get("choice")
    if not choice:
        verdict = ("No variant was trained on every dataset, so the rule of the fixed defaults "
                   f"weighed none against `{base}`.")
    else:
        on = " and ".join(display_name(d) for d in res["datasets"])
        kept = choice["chosen"] == base
        verdict = (f"The rule of the fixed defaults, on {on}, "
                   + (f"keeps `{base}`: no variant gained on each of them by more than the "
                      f"spread of its gains." if kept else
                      f"takes `{choice['chosen']}`: a gain on each of them, above the "
                      f"spread of its gains."))
        for v in res.get("not_candidates") or []:
            verdict += (f" `{v}` was trained on {', '.join(display_name(d) for d in runs[v])} "
                        f"only, so the rule could not weigh it.")
    if library:
        verdict += (f" The library trains `{library}`"
                    + ("" if library == base else ", by the budget rule of the `cpu` profile "
                       "(as many epochs as each dataset's time limit allows, a rule of time, "
                       "not of scores)") + ".")
    if shipped:
        verdict += (f" `{reported}` was retrained here for the comparison; the report's numbers "
                    f"come from its runs as shipped: {', '.join(shipped)}.")
    if replay:
        verdict += (f" Each run of {' and '.join(replay)} began with `{base}`'s very epochs "
                    f"(the same validation IoU, epoch for epoch), so the model it kept was "
                    f"chosen among those epochs and the ones after.")
    return [f"U-Nets with more capacity or more training, against `{base}` (MONAI's "
            f"num_res_units {', '.join(map(str, b_units))}, "
            + (f"{b_epochs[0]} epochs" if len(b_epochs) == 1 else "epochs " + ", ".join(
                f"{display_name(d)} {r['epochs']}" for d, r in runs[base].items()))
            + ") on its folds, the "
            "ensemble's out-of-fold mean IoU at the shipped defaults: "
            + "; ".join(said) + ". " + verdict]


def _ceiling_text(data: Mapping[str, Any]) -> list[str]:
    """How far any post-processing could take the shipped U-Nets (``seg_ceiling.json``)."""
    summary = _results(data.get("seg_ceiling")).get("summary") or {}
    rows = [(d, summary[d]) for d in SEG_SETS if d in summary]
    if not rows:
        return []
    said = "; ".join(
        f"{display_name(d)} {r['best_post_processing_iou']:.3f} with the best single choice "
        f"({r['best_post_processing']}) and {r['oracle_per_image_iou']:.3f} with the per-image "
        f"pick, against a target of {r['target']:.3f} ({r['target_is']})" for d, r in rows)
    out = [f"How far post-processing alone could take these U-Nets in their own domain, with "
           f"every threshold, fusion rule and erosion of HM, and a per-image pick of HM, DEEP or "
           f"AND, chosen on the test images themselves (an upper bound for any one rule over a "
           f"whole dataset, not a result; the shipped ensemble, whose folds each choose their "
           f"own rule, may pass it): {said}."]
    seg = _seg(data)
    reached = [d for d, r in rows if (_interval(seg, d, "ENSEMBLE") or {}).get("mean", -1.0)
               >= r["target"]]
    single = [d for d, r in rows
              if d not in reached and r["best_post_processing_iou"] >= r["target"]]
    pick = [d for d, r in rows if d not in reached + single
            and r["oracle_per_image_iou"] >= r["target"]]
    neither = [d for d, r in rows if d not in reached + single + pick]

    def names(ds: list[str]) -> str:
        return ", ".join(display_name(d) for d in ds)

    if reached:
        out.append(f"Reached by the ensemble as shipped: {names(reached)} (its defaults chosen "
                   f"by the protocol; the leave-one-dataset-out tables give what each dataset "
                   f"gets from the choices made without it).")
    if single:
        out.append(f"Within reach of one choice: {names(single)}; a rule chosen without the "
                   f"test images could still get there.")
    if pick:
        out.append(f"Within reach only of a per-image pick as good as the ground truth's: "
                   f"{names(pick)}.")
    if neither:
        out.append(f"Out of reach of any of them: {names(neither)}; what is missing there is a "
                   f"better network, not another fusion rule.")
    return out


def _gate_text(seg: Mapping[str, Any]) -> list[str]:
    """Which image sets the set gate gave their handcrafted masks, in words."""
    from leukolib.segmentation.reference import gate_sentence

    said = gate_sentence(seg)
    return [said] if said else []


def _ensemble_claim(data: Mapping[str, Any]) -> Claim | None:
    seg = _seg(data)
    if not seg:
        return None
    paper = _paper_table2()
    inside, below, above, parts = 0, 0, 0, []
    for d in SEG_SETS:
        ens = _interval(seg, d, "ENSEMBLE")
        if not ens or d not in paper:
            continue
        parts.append(f"{display_name(d)} {_iou_text(ens)} (paper {paper[d]:.3f})")
        if ens["ci_low"] <= paper[d] <= ens["ci_high"]:
            inside += 1
        elif paper[d] > ens["ci_high"]:
            below += 1
        else:
            above += 1
    n = inside + below + above
    if not n:
        return None
    if below == 0:
        verdict, why = "supported", (f"the paper's value lies inside or below our interval on "
                                     f"{_share(n, n)} datasets")
    elif below == n:
        verdict, why = "not supported", "our interval lies below the paper's value everywhere"
    else:
        verdict = "not supported"
        why = (f"reached on {_share(inside + above, n)} datasets; on {_share(below, n)} our "
               f"interval lies below the paper's value")
    return Claim(
        claim="The ensemble segments the nucleus with a mean IoU of about 0.92 (Tables 2 and 4).",
        paper="; ".join(f"{display_name(d)} {paper[d]:.3f}" for d in SEG_SETS if d in paper),
        evidence="Mean IoU out-of-fold, 95 % bootstrap interval: " + "; ".join(parts) + ".",
        verdict=verdict, why=why,
        would_change="the paper profile's U-Net (256 px, 30 epochs, a GPU); other annotators' "
                     "masks of the same images",
        source=f"segmentation.json (commit {_commit(data.get('segmentation'))})")


def _fusion_claim(data: Mapping[str, Any]) -> Claim | None:
    """The ensemble beats *each* part: on a dataset, both paired tests must say so."""
    seg = _seg(data)
    if not seg:
        return None
    both, against, parts, n = [], 0, [], 0
    for d in SEG_SETS:
        rows = [_paired(seg, d, d, comp) for comp in ("ENSEMBLE - HM", "ENSEMBLE - DEEP")]
        if not all(rows):
            continue
        n += 1
        if all(r["verdict"] == "ENSEMBLE better" for r in rows):
            both.append(display_name(d))
        against += sum(r["verdict"] not in ("ENSEMBLE better", "no significant difference")
                       for r in rows)
        parts.append(f"{display_name(d)}: against HM {rows[0]['verdict']} "
                     f"({rows[0]['mean_diff']:+.3f}), against DEEP {rows[1]['verdict']} "
                     f"({rows[1]['mean_diff']:+.3f})")
    if not n:
        return None
    if against:
        verdict, why = "not supported", f"a part beats the ensemble in {against} test(s)"
    elif len(both) == n:
        verdict, why = "supported", f"it beats both parts on every one of the {n} datasets"
    else:
        verdict = "cannot tell"
        why = (f"it beats both parts on {len(both)} of {n} datasets"
               f"{' (' + ', '.join(both) + ')' if both else ''}; elsewhere a test finds no "
               f"difference, and none finds a part better")
    return Claim(
        claim="Fusing the handcrafted and the deep mask beats each of them alone.",
        paper="Tables 2 and 3 (ensemble above HM and DEEP)",
        evidence="Paired Wilcoxon tests over images (out-of-fold), Holm within the table: "
                 + "; ".join(parts) + ".",
        verdict=verdict, why=why,
        would_change="more datasets; the paper profile's U-Net",
        source=f"segmentation.json (commit {_commit(data.get('segmentation'))})")


def _tally(favour: int, against: int, n: int, lean: int,
           other: int | None = None) -> tuple[str, str]:
    """A verdict from the tests that favour the claim, those against it, and the leaning estimates.

    ``lean`` counts the comparisons whose estimate points the claim's way,
    ``other`` those pointing the other way (default ``n - lean``); a tie
    (a difference of exactly zero) points neither way.
    """
    other = n - lean if other is None else other
    if favour and not against:
        return "supported", f"{_share(favour, n)} tests agree with it and none goes against it"
    if against and not favour:
        return "not supported", f"{_share(against, n)} tests go against it and none agrees"
    if favour and against:
        return "not supported", (f"the tests disagree: {_share(favour, n)} agree with it, "
                                 f"{against} go against it")
    if lean > other:
        return "cannot tell", (f"no test is significant; the estimates lean the claim's way in "
                               f"{_share(lean, n)} comparisons, the other way in {other}")
    return "not supported", (f"no test is significant, and the estimates lean the other way as "
                             f"often as the claim's ({other} against {lean} of {n})")


# ---------------------------------------------------------------- classification

def _cls_tables(payload: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    from leukolib.classification.report import committed_tables

    return committed_tables(payload)["tables"]


def _best_model(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    from leukolib.classification.best import best_model

    rows = (payload.get("grid") or {}).get("table") or []
    if not rows:
        return None
    frame = pd.DataFrame(rows).set_index("model")
    key = best_model(frame["val acc (mean)"].to_dict())
    row = frame.loc[key]
    n = int((payload.get("grid") or {}).get("n_test") or 0)
    return {"model": key, "val": float(row["val acc (mean)"]), "test": float(row["test acc"]),
            "low": float(row["CI low"]), "high": float(row["CI high"]), "n": n,
            "k": round(float(row["test acc"]) * n)}


def _acc_text(acc: float, low: float, high: float, n: int) -> str:
    k = round(acc * n)
    return f"{k}/{n} = {_ci(acc, low, high)}"


def _chapter5(data: Mapping[str, Any]) -> list[str]:
    out = []
    for d in CLS_SETS:
        payload = data.get(f"classification_{d}_cpu")
        if payload is None:
            continue
        name = display_name(d)
        best = _best_model(payload)
        if best:
            out.append(f"{name}: the model chosen on validation accuracy, {best['model']}, "
                       f"scores {_acc_text(best['test'], best['low'], best['high'], best['n'])} "
                       f"on its held-out test split.")
        tables = _cls_tables(payload)
        svr = tables.get("segmented against raw (McNemar)")
        if svr is not None:
            seg_better = int((svr["verdict"] == "segmented better").sum())
            raw_better = int((svr["verdict"] == "raw better").sum())
            raw_ge = int((svr["difference"] <= 0).sum())
            if seg_better or raw_better:
                said = (f"segmented better in {_share(seg_better, len(svr))} pairs and raw better "
                        f"in {_share(raw_better, len(svr))} (McNemar, Holm-adjusted)")
            else:
                said = (f"no pair differs significantly (McNemar, Holm-adjusted); the raw model "
                        f"scores at least as well as its segmented twin in "
                        f"{_share(raw_ge, len(svr))} pairs")
            out.append(f"{name}, segmented against raw (same head and activation): {said}.")
        base = (payload.get("baselines") or {}).get("color")
        grid = (payload.get("grid") or {}).get("table") or []
        if base and grid and base.get("test_acc_ci") and payload["grid"].get("n_test"):
            top = max(r["test acc"] for r in grid)
            n = int(payload["grid"]["n_test"])
            vs = tables.get("every model against the colour-only baseline (McNemar)")
            beaten = int((vs["verdict"] == "model better").sum()) if vs is not None else 0
            out.append(f"{name}: a random forest on the colour histogram alone scores "
                       f"{_acc_text(base['test_acc'], *base['test_acc_ci'], n)}, the best CNN "
                       f"{top:.3f}; {beaten} of the {len(grid)} models beat it "
                       f"significantly (McNemar, Holm-adjusted).")
    splits = _results(data.get("classification_all_idb2_cpu_splits"))
    if splits.get("splits"):
        table = pd.DataFrame(splits["splits"])
        acc = table["its test acc"]
        out.append(f"Over {len(table)} test splits of {display_name(splits['dataset'])} "
                   f"({int(table['n test'].iloc[0])} images each), the model chosen on validation "
                   f"scored {acc.min():.3f} to {acc.max():.3f} (mean {acc.mean():.3f}).")
    return out


def images_for_accuracy(accuracy: float, confidence: float = 0.95) -> int:
    """Test images, all classified correctly, for an exact interval to reach up from ``accuracy``.

    The lower bound of the two-sided Clopper-Pearson interval of n/n (the
    interval the book prints) is ``((1 - confidence) / 2) ** (1 / n)``; it
    reaches ``accuracy`` from this n on.

    Examples
    --------
    >>> images_for_accuracy(0.9999)
    36887
    """
    alpha = (1.0 - confidence) / 2
    return math.ceil(math.log(alpha) / math.log(accuracy))


def _segmented_claim(data: Mapping[str, Any]) -> Claim | None:
    favour = against = lean = other = n = 0
    parts = []
    for d in CLS_SETS:
        payload = data.get(f"classification_{d}_cpu")
        if payload is None:
            continue
        svr = _cls_tables(payload).get("segmented against raw (McNemar)")
        if svr is None:
            continue
        favour += int((svr["verdict"] == "segmented better").sum())
        against += int((svr["verdict"] == "raw better").sum())
        lean += int((svr["difference"] > 0).sum())
        other += int((svr["difference"] < 0).sum())
        n += len(svr)
        seg_acc = ", ".join(f"{v:.3f}" for v in svr["segmented"])
        raw_acc = ", ".join(f"{v:.3f}" for v in svr["raw"])
        parts.append(f"{display_name(d)}: segmented {seg_acc} against raw {raw_acc} "
                     f"({len(svr)} pairs: {', '.join(map(str, svr.index))})")
    if not n:
        return None
    verdict, why = _tally(favour, against, n, lean, other)
    return Claim(
        claim="A classifier trained on the segmented nucleus is better than one trained on the "
              "raw image.",
        paper="Table 5: 99.99 % (segmented Mish Medium) against 99.97 % (raw ReLU Medium)",
        evidence="Test accuracy of each segmented model against its raw twin, McNemar tests "
                 "Holm-adjusted within a dataset: " + "; ".join(parts) + ".",
        verdict=verdict, why=why,
        would_change="a test split large enough to see a difference of a few points "
                     "(hundreds of images); the paper profile's pretrained ResNet-50",
        source=", ".join(f"classification_{d}_cpu.json (commit "
                         f"{_commit(data.get(f'classification_{d}_cpu'))})" for d in CLS_SETS))


def _accuracy_claim(data: Mapping[str, Any]) -> Claim | None:
    """99.99 %: every test split of ALL-IDB2 pooled (each split's model chosen on validation)."""
    from leukolib.stats import proportion_ci

    payload = data.get("classification_all_idb2_cpu")
    splits = _results(data.get("classification_all_idb2_cpu_splits"))
    if payload is None:
        return None
    best = _best_model(payload)
    if not best:
        return None
    target, need = 0.9999, images_for_accuracy(0.9999)
    k, n, said = best["k"], best["n"], "its test split"
    if splits.get("splits"):
        table = pd.DataFrame(splits["splits"])
        ks = (table["its test acc"] * table["n test"]).round().astype(int)
        k, n = int(ks.sum()), int(table["n test"].sum())
        said = f"the {len(table)} test splits pooled"
    low, high = proportion_ci(k, n)
    evidence = (f"{display_name('all_idb2')}: the model chosen on validation, on {said}: "
                f"{_acc_text(k / n, low, high, n)}")
    if high < target:
        verdict = "not supported"
        why = (f"the whole exact interval of {k}/{n} lies below 0.9999 (upper bound "
               f"{high:.4f}): {n - k} error(s) in {n} images is not what 99.99 % predicts")
    elif low >= target:
        verdict, why = "supported", f"the exact interval of {k}/{n} lies above 0.9999"
    else:  # the number lies inside our interval, but the interval cannot resolve it
        verdict = "cannot tell"
        why = (f"the exact interval of {k}/{n} reaches down to {low:.3f}: a test set this small "
               f"cannot show 99.99 %; {need} images all classified correctly would be needed")
    return Claim(
        claim="The system classifies ALL blasts with 99.99 % accuracy.",
        paper="Tables 5 and 6: 99.99 % (validation accuracy of the best fold)",
        evidence=evidence + ".",
        verdict=verdict, why=why,
        would_change=f"a test set of about {need} images (or the paper's own, with its splits)",
        source=f"classification_all_idb2_cpu.json (commit {_commit(payload)}), "
               f"classification_all_idb2_cpu_splits.json (commit "
               f"{_commit(data.get('classification_all_idb2_cpu_splits'))})")


# ------------------------------------------------------------------ explanations

def _explain(data: Mapping[str, Any], d: str) -> Mapping[str, Any]:
    return _results(data.get(f"explain_{d}_cpu"))


def _chapter6(data: Mapping[str, Any]) -> list[str]:
    out = []
    for d in CLS_SETS:
        e = _explain(data, d)
        if not e:
            continue
        h = e.get("headline") or {}
        name = display_name(d)
        out.append(f"{name} ({h.get('n_explained')} test images, CAMs on a {h.get('grid')} grid): "
                   f"the segmented models put {h['segmented_share_min']:.2f} to "
                   f"{h['segmented_share_max']:.2f} of their Grad-CAM energy on the nucleus, the "
                   f"raw ones {h['raw_share_min']:.2f} to {h['raw_share_max']:.2f}; the nucleus "
                   f"covers {h['area_nucleus']:.2f} of the image and the best map on the grid "
                   f"could put {h['best_nucleus']:.2f} there.")
        svr = pd.DataFrame(e.get("segmented_vs_raw") or [])
        if len(svr):
            seg = int((svr["verdict"] == "segmented better").sum())
            raw = int((svr["verdict"] == "raw better").sum())
            out.append(f"{name}: more energy on the nucleus for the segmented model in "
                       f"{_share(seg, len(svr))} (architecture, method) pairs, for the raw one in "
                       f"{_share(raw, len(svr))} (Wilcoxon, Holm-adjusted).")
        rec = (e.get("recommendation") or {}).get("text")
        if rec:
            out.append(f"{name}: recommended map: {rec}.")
    return out


def _nucleus_claim(data: Mapping[str, Any]) -> Claim | None:
    favour = against = lean = other = n = 0
    parts = []
    for d in CLS_SETS:
        e = _explain(data, d)
        svr = pd.DataFrame(e.get("segmented_vs_raw") or [])
        if not len(svr):
            continue
        h = e["headline"]
        favour += int((svr["verdict"] == "segmented better").sum())
        against += int((svr["verdict"] == "raw better").sum())
        lean += int((svr["difference"] > 0).sum())
        other += int((svr["difference"] < 0).sum())
        n += len(svr)
        parts.append(f"{display_name(d)}: nucleus share of the CAM energy "
                     f"{h['segmented_share_min']:.2f}-{h['segmented_share_max']:.2f} segmented, "
                     f"{h['raw_share_min']:.2f}-{h['raw_share_max']:.2f} raw (nucleus area "
                     f"{h['area_nucleus']:.2f})")
    if not n:
        return None
    top = max(_explain(data, d).get("headline", {}).get("segmented_share_max", 1.0)
              for d in CLS_SETS if _explain(data, d))
    verdict, why = _tally(favour, against, n, lean, other)
    return Claim(
        claim="The segmented models look at the nucleus (their Grad-CAMs lie on it).",
        paper="Figures 8 and 9 (maps of a few cells, no measure)",
        evidence="; ".join(parts) + f"; segmented against raw, Wilcoxon over test images, "
                 f"Holm-adjusted: {_share(favour, n)} pairs favour the segmented models.",
        verdict=verdict,
        why=why + (f"; even so, at most {top:.2f} of the energy lies on the nucleus"
                   if top < 0.5 else ""),
        would_change="finer maps (a pretrained ResNet-50 at 224 px gives a 7 x 7 grid); more "
                     "test images",
        source=", ".join(f"explain_{d}_cpu.json (commit {_commit(data.get(f'explain_{d}_cpu'))})"
                         for d in CLS_SETS))


# -------------------------------------------------------------------- robustness

def _robust(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return _results(data.get("robustness"))


def _chapter7(data: Mapping[str, Any]) -> list[str]:
    rob = _robust(data)
    out = []
    for d, r in rob.items():
        name = display_name(d)
        rb = (r.get("robustness") or {})
        t7 = pd.DataFrame(rb.get("table7") or [])
        if len(t7):
            # the way a corruption reaches each model in practice: through its mask, or raw
            seg, raw = t7[t7["way"] == "before"], t7[t7["way"] == "raw"]
            if len(seg) and len(raw):
                out.append(
                    f"{name}, the paper's blur and noise on {int(t7['n'].iloc[0])} test images "
                    f"(Table 7): the segmented models score {_span(seg['acc'])} (clean "
                    f"{_span(seg['clean_acc'])}), the raw ones {_span(raw['acc'])} (clean "
                    f"{_span(raw['clean_acc'])}).")
        deg = (rb.get("degradation") or {}).get("segmented_vs_raw") or []
        if deg:
            frame = pd.DataFrame(deg)
            frame = frame[frame["corruption"] != "all"]
            sig = frame[frame["verdict"] != "no significant difference"]
            said = ("no corruption separates them" if not len(sig) else
                    "; ".join(f"{r['corruption']}: {r['verdict']}" for _, r in sig.iterrows()))
            out.append(f"{name}: accuracy lost under {_count(len(frame), 'corruption')}, the "
                       f"segmented model against the raw one: {said}.")
        comp = ((r.get("clusters") or {}).get("comparison") or {})
        if comp:
            diff = format_interval(comp["diff"], comp.get("ci_low"), comp.get("ci_high"), 2,
                                   signed=True)
            out.append(f"{name}: the logit clusters' separation (distance over spread) of "
                       f"{comp['a']} is {comp['ratio_a']:.2f}, of {comp['b']} "
                       f"{comp['ratio_b']:.2f}; difference {diff}"
                       + (", an interval that holds zero." if _holds_zero(comp) else "."))
        segr = r.get("segmentation") or {}
        cmp = segr.get("comparisons") or {}
        ens = segr.get("ensemble")
        if cmp and ens:  # the rule the sweep ran, which a later report may have replaced
            from leukolib.segmentation.ensemble import EnsembleParams

            out.append(f"{name}: the segmentation sweep's ENSEMBLE is the rule its report "
                       f"recorded, {ens}"
                       + ("." if ens == EnsembleParams().label() else
                          ", not the library's default of today."))
        for key, what in (("ENSEMBLE_vs_HM", "HM"), ("ENSEMBLE_vs_DEEP", "DEEP")):
            v = cmp.get(key)
            if not v:
                continue
            def shown(c: str) -> str:
                return "the clean images" if c == "none" else c.replace("_", " ")

            better = [shown(c) for c, s in v.items() if s == "ENSEMBLE better"]
            worse = [shown(c) for c, s in v.items()
                     if s not in ("ENSEMBLE better", "no significant difference")]
            out.append(f"{name} segmentation ({segr.get('n_images')} images), ENSEMBLE against "
                       f"{what}, clean and under {_count(len(v) - 1, 'corruption')}: better on "
                       f"{', '.join(better) or 'none of them'}; worse on "
                       f"{', '.join(worse) or 'none of them'} (Wilcoxon, Holm-adjusted).")
    return out


def _span(values: pd.Series) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.3f}" if round(lo, 3) == round(hi, 3) else f"{lo:.3f} to {hi:.3f}"


def _holds_zero(comp: Mapping[str, Any]) -> bool:
    lo, hi = comp.get("ci_low"), comp.get("ci_high")
    return lo is not None and hi is not None and lo <= 0 <= hi


def _robustness_claim(data: Mapping[str, Any]) -> Claim | None:
    rob = _robust(data)
    favour = against = lean = other = n = 0
    parts = []
    for d, r in rob.items():
        deg = ((r.get("robustness") or {}).get("degradation") or {}).get("segmented_vs_raw")
        if not deg:
            continue
        frame = pd.DataFrame(deg)
        frame = frame[frame["corruption"] != "all"]
        favour += int(frame["verdict"].str.startswith("segmented").sum())
        against += int(frame["verdict"].str.startswith("raw").sum())
        lean += int((frame["mean_diff"] > 0).sum())
        other += int((frame["mean_diff"] < 0).sum())
        n += len(frame)
        parts.append(f"{display_name(d)}: accuracy change segmented minus raw, per corruption, "
                     + ", ".join(f"{c} {m:+.3f}" for c, m in zip(frame["corruption"],
                                                                   frame["mean_diff"],
                                                                   strict=True)))
    if not n:
        return None
    verdict, why = _tally(favour, against, n, lean, other)
    return Claim(
        claim="The segmented models keep their accuracy under blur and noise better than the "
              "raw ones.",
        paper="Table 7: segmented 100 % and 98.5 %, raw 89.4 % and 80.3 % after blur and noise",
        evidence="; ".join(parts) + " (paired over test images, Holm-adjusted).",
        verdict=verdict, why=why,
        would_change="a larger test split; the paper's own corrupted test set",
        source=f"robustness.json (commit {_commit(data.get('robustness'))})")


def _cluster_claim(data: Mapping[str, Any]) -> Claim | None:
    rob = _robust(data)
    parts, favour, against, n = [], 0, 0, 0
    for d, r in rob.items():
        comp = ((r.get("clusters") or {}).get("comparison") or {})
        if not comp:
            continue
        n += 1
        lo, hi = comp.get("ci_low"), comp.get("ci_high")
        if lo is not None and lo > 0:
            favour += 1
        elif hi is not None and hi < 0:
            against += 1
        parts.append(f"{display_name(d)}: ratio {comp['ratio_a']:.2f} ({comp['a']}) against "
                     f"{comp['ratio_b']:.2f} ({comp['b']}), difference "
                     f"{format_interval(comp['diff'], lo, hi, 2, signed=True)}")
    if not n:
        return None
    diffs = [((r.get("clusters") or {}).get("comparison") or {}).get("diff")
             for r in rob.values()]
    diffs = [x for x in diffs if x is not None]
    verdict, why = _tally(favour, against, n, sum(x > 0 for x in diffs),
                          sum(x < 0 for x in diffs))
    return Claim(
        claim="The segmented models' logits form tighter, better separated clusters.",
        paper="Table 8: distance-over-spread ratio 25.8 and 24.1 segmented, 12.5 and 11.6 raw",
        evidence="; ".join(parts) + " (bootstrap interval over test images).",
        verdict=verdict, why=why,
        would_change="more test images per class (the ratio of 13 points per class is noisy)",
        source=f"robustness.json (commit {_commit(data.get('robustness'))})")


# ------------------------------------------------------------------------ public

@dataclass(frozen=True)
class Claim:
    """One claim of the paper, our evidence on real data, and a verdict.

    Attributes
    ----------
    claim : str
        The claim, in words.
    paper : str
        Where the paper makes it, with its numbers.
    evidence : str
        Our evidence: dataset, numbers, intervals, tests.
    verdict : str
        One of :data:`VERDICTS`.
    why : str
        Why this verdict (the rule's reason, from the numbers).
    would_change : str
        What would change it.
    source : str
        The shipped result files and their commits.
    """

    claim: str
    paper: str
    evidence: str
    verdict: str
    why: str
    would_change: str
    source: str


_FINDERS = {2: _chapter2, 3: _chapter3, 4: _chapter4, 5: _chapter5, 6: _chapter6, 7: _chapter7}
# Sentences a page folds (how a default was chosen, what bounds it), after the main ones.
_DETAILS = {4: _chapter4_details}


def chapter_findings(chapter: int, data: Mapping[str, Any] | None = None) -> list[str]:
    """What the committed real-data results of a chapter say, as sentences.

    Parameters
    ----------
    chapter : int
        2 to 7 (:data:`CHAPTERS`).
    data : mapping, optional
        The shipped results (default: :func:`shipped`).

    Returns
    -------
    list of str
        The main sentences, then the details (:func:`chapter_details`); empty
        when the chapter's results are not shipped.
    """
    data = shipped() if data is None else data
    return chapter_main(chapter, data) + chapter_details(chapter, data)


def _known(chapter: int) -> None:
    if chapter not in _FINDERS:
        raise ValueError(f"chapter {chapter}: findings exist for chapters {sorted(_FINDERS)}")


def chapter_main(chapter: int, data: Mapping[str, Any] | None = None) -> list[str]:
    """The sentences of :func:`chapter_findings` a page shows in its main text."""
    _known(chapter)
    return _FINDERS[chapter](shipped() if data is None else data)


def chapter_details(chapter: int, data: Mapping[str, Any] | None = None) -> list[str]:
    """The sentences of :func:`chapter_findings` a page folds: how defaults were chosen.

    Examples
    --------
    >>> chapter_details(2, {})
    []
    """
    _known(chapter)
    finder = _DETAILS.get(chapter)
    return finder(shipped() if data is None else data) if finder else []


def claims(data: Mapping[str, Any] | None = None) -> list[Claim]:
    """The paper's claims, one by one, each with our evidence and a verdict."""
    data = shipped() if data is None else data
    found = (_ensemble_claim(data), _fusion_claim(data), _segmented_claim(data),
             _nucleus_claim(data), _robustness_claim(data), _cluster_claim(data),
             _accuracy_claim(data))
    return [c for c in found if c is not None]


def claims_table(data: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """:func:`claims` as a table (one row per claim)."""
    rows = [asdict(c) for c in claims(data)]
    return pd.DataFrame(rows, columns=[f for f in Claim.__dataclass_fields__])


def verdict_summary(data: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Each claim and its verdict, with the reason in a few words: the front page's table."""
    table = claims_table(data)
    return table[["claim", "verdict", "why"]].rename(
        columns={"claim": "the paper's claim", "why": "why (our real-data evidence)"}
    ).set_index("the paper's claim")


#: Which shipped results each chapter's findings read.
CHAPTER_SOURCES: dict[int, tuple[str, ...]] = {
    2: ("segmentation",),
    3: ("segmentation",),
    4: ("segmentation", "seg_ceiling", "unet_variants_cpu"),
    5: ("classification_all_idb2_cpu", "classification_jtsc_cpu",
        "classification_all_idb2_cpu_splits"),
    6: ("explain_all_idb2_cpu", "explain_jtsc_cpu"),
    7: ("robustness",),
}


def source_line(names: Sequence[str], data: Mapping[str, Any] | None = None) -> str:
    """``From segmentation.json (commit a44c76b, 2026-12-04); ...``: where findings come from."""
    from leukolib.classification.report import report_profile

    data = shipped(names) if data is None else data
    said = []
    for n in names:
        payload = data.get(n)
        if payload is None:
            continue
        p = payload.get("provenance") or payload
        # a classification report keeps its profile's settings under "profile": name it instead
        profile = p.get("profile")
        profile = profile if isinstance(profile, str) and profile else report_profile(p)
        said.append(f"{n}.json ({profile} profile, commit "
                    f"{p.get('commit', '?')}, {str(p.get('date', ''))[:10]})")
    return ("From " + "; ".join(said) + " (`python -m leukolib.findings` prints every "
            "finding).") if said else ""



def main() -> int:  # pragma: no cover - a convenience for authors
    """Print every chapter's findings and the claims' verdicts."""
    data = shipped(tuple(dict.fromkeys(SHIPPED + sum(CHAPTER_SOURCES.values(), ()))))
    for chapter, subject in CHAPTERS.items():
        print(f"Chapter {chapter} ({subject}):")
        for sentence in chapter_findings(chapter, data):
            print(f"  - {sentence}")
    for c in claims(data):
        print(f"{c.claim}\n  {c.verdict}: {c.why}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
