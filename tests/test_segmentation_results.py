"""The segmentation results: fusion rules, the selection protocol, golden values, duplicates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from leukolib import reference
from leukolib.data import load_dataset
from leukolib.data.datasets import display_names_in
from leukolib.data.fingerprint import dataset_fingerprints, split_groups
from leukolib.errors import LossyMaskWarning
from leukolib.folds import kfold
from leukolib.metrics import segmentation_metrics
from leukolib.segmentation.ensemble import EnsembleParams, fuse
from leukolib.segmentation.fold_fusion import FOLD_FUSION
from leukolib.segmentation.handcrafted import HandcraftedParams, segment_nucleus
from leukolib.segmentation.tta import TTA, VIEW_SETS
from leukolib.selection import choose, leave_one_out

# ----------------------------------------------------------------------------- fusion rules


def _arrays():
    """A 12 x 12 handcrafted mask and a U-Net probability map that disagree in known places."""
    hm = np.zeros((12, 12), bool)
    hm[2:8, 2:8] = True  # 36 px
    p = np.zeros((12, 12), np.float32)
    p[4:10, 4:10] = 0.9  # confident, 36 px, 16 of them inside HM
    p[2:4, 2:8] = 0.4  # doubtful, inside HM (12 px)
    p[0, 0] = 0.7  # confident, alone (1 px)
    return hm, p


NO_FALLBACK = {"fallback_iou": 0.0, "fallback_entropy": 0.0}


def test_and_or_soft_on_hand_made_arrays():
    hm, p = _arrays()
    no_opening = {"min_area": 0, **NO_FALLBACK}  # the rules alone, no fallback
    assert fuse(hm, p, EnsembleParams("and", **no_opening)).sum() == 16
    assert fuse(hm, p, EnsembleParams("or", **no_opening)).sum() == 36 + 36 - 16 + 1
    # soft, w = 0.75: inside HM p must reach 1/3 (the doubtful 0.4 passes), outside 2/3
    soft = fuse(hm, p, EnsembleParams("soft", soft_weight=0.75, **no_opening))
    assert soft.sum() == 36 + 36 - 16 + 1 - 8  # HM's pixels with p = 0 (8 px) are dropped
    assert soft[2, 2] and soft[9, 9] and soft[0, 0] and not soft[7, 2]
    # w = 0.9: inside HM p must reach 0.444: the doubtful 0.4 no longer passes
    assert not fuse(hm, p, EnsembleParams("soft", soft_weight=0.9, **no_opening))[2, 2]
    # the threshold moves DEEP's cut
    assert fuse(hm, p, EnsembleParams("and", threshold=0.3, **no_opening)).sum() == 16 + 12
    # the two masks agree with IoU 16/56 < 0.3: the default ensemble keeps HM alone
    assert (fuse(hm, p, EnsembleParams(min_area=0)) == hm).all()


def test_the_area_opening_removes_small_objects_after_the_fusion():
    hm, p = _arrays()
    absolute = EnsembleParams("or", min_area=2, reference_area=None, **NO_FALLBACK)
    out = fuse(hm, p, absolute)
    assert not out[0, 0] and out.sum() == 36 + 36 - 16  # the lone pixel goes
    scaled = EnsembleParams("or", min_area=150, **NO_FALLBACK)  # 1 px at 12 x 12
    assert fuse(hm, p, scaled)[0, 0]
    with pytest.raises(ValueError, match="differ in shape"):
        fuse(hm, p[:5])
    assert EnsembleParams().label().startswith(EnsembleParams().rule())


# ----------------------------------------------------------------------------- selection


def test_the_rule_keeps_the_incumbent_unless_a_gain_holds_everywhere():
    scores = pd.DataFrame({"a": [0.90, 0.95, 0.91, 0.90], "b": [0.90, 0.89, 0.92, 0.90],
                           "c": [0.80, 0.81, 0.82, 0.80]},
                          index=["paper", "one-sided", "consistent", "same"])
    c = choose(scores, "paper")
    assert c.chosen == "consistent" and bool(c.table.loc["one-sided", "passes"]) is False
    assert "beat 'paper'" in c.reason
    # a candidate identical on one dataset (gain 0 there) does not pass: 0 is not a gain
    assert choose(scores.loc[["paper", "same"]], "paper").chosen == "paper"
    lodo = leave_one_out(scores, "paper")
    assert list(lodo["held_out"]) == ["a", "b", "c"]
    held = lodo.set_index("held_out")
    assert held.loc["a", "chosen"] == "consistent"  # b and c agree on it
    assert held.loc["a", "chosen_score"] == pytest.approx(0.91)


# ----------------------------------------------------------------------------- shipped defaults


def test_the_library_defaults_are_the_ones_the_protocol_chose():
    """The defaults in the code and the choices recorded by the benchmark must agree."""
    if not reference.available("segmentation"):
        pytest.fail("leukolib/reference/segmentation.json is missing: run "
                    "benchmarks/segmentation_report.py and commit its output")
    r = reference.load("segmentation")["results"]
    assert r["defaults"]["handcrafted"] == HandcraftedParams().to_dict()
    library = EnsembleParams().to_dict()
    recorded = r["defaults"]["ensemble"]
    assert {k: library[k] for k in recorded} == recorded
    # a parameter the report predates must keep the behaviour the report measured
    newer = {k: v for k, v in library.items() if k not in recorded}
    assert all(k.startswith(("fallback_", "gate_")) and v == 0.0 for k, v in newer.items()), newer
    for key in ("handcrafted", "threshold", "fusion_in_domain", "area_opening", "fold_fusion"):
        assert r[key]["leave_one_out"], key  # every choice was checked on held-out data
    # each fold's own rule is the library's only where the protocol took it
    assert r["defaults"]["fold_fusion"] is FOLD_FUSION
    assert (r["fold_fusion"]["chosen"] == "per fold") is FOLD_FUSION
    # test-time mirroring: the library's views are the protocol's, chosen against one view
    assert r["defaults"]["tta"] == TTA == r["tta"]["chosen"]
    assert r["tta"]["incumbent"] == VIEW_SETS[0] and r["tta"]["leave_one_out"]


def test_the_shipped_runs_trained_for_the_epochs_of_the_budget_rule():
    """``cpu``'s epochs are floor(8 x limit / 8-epoch seconds) of the shipped records, and used."""
    import math

    from leukolib.profiles import get_profile

    r = reference.load("segmentation")["results"]
    sp = get_profile("cpu").segmentation
    limit, eight = r["before_scale"]["unet_runs"], r["before_budget"]["unet_runs"]
    for d, run in r["unet_runs"].items():
        assert eight[d]["epochs"] == sp.epochs
        assert sp.epochs_for(d) == math.floor(
            sp.epochs * limit[d]["total_seconds"] / eight[d]["total_seconds"]), d
        assert run["epochs"] == sp.epochs_for(d), d


def test_a_long_selection_table_keeps_the_incumbent_the_choice_and_the_best():
    """The book shows dozens of fallback candidates as a short table, losing none that matter."""
    from leukolib.segmentation import reference as seg_ref

    if not seg_ref.available():
        pytest.fail("leukolib/reference/segmentation.json is missing")
    for key in seg_ref.PARAMETERS:
        if key == "handcrafted" or key not in seg_ref.results():
            continue
        full, short = seg_ref.selection(key), seg_ref.selection(key, top=1)
        rec = seg_ref.results()[key]
        assert {rec["incumbent"], rec["chosen"]} <= set(short.index), key
        assert len(short) <= 3 and set(short.index) <= set(full.index), key
        best = full.drop(index=[rec["incumbent"], rec["chosen"]], errors="ignore")
        if len(full) > 3 and len(best):
            first = best.sort_values(["passes", "mean_gain"], ascending=False).index[0]
            assert first in short.index, key
        assert short["chosen"].sum() == 1, key


def test_the_fallback_sentence_follows_the_recorded_rule(monkeypatch):
    """A report that predates the entropy, and a choice of no fallback, read as they measured."""
    import copy

    from leukolib.segmentation import reference as seg_ref

    if not seg_ref.available():
        pytest.fail("leukolib/reference/segmentation.json is missing")
    shipped = seg_ref.results()
    old = copy.deepcopy(shipped)  # as a report that predates the entropy fallback wrote it
    old["defaults"]["ensemble"].pop("fallback_entropy", None)
    old["defaults"]["ensemble"]["fallback_iou"] = 0.3
    old["fallback"]["chosen"] = "iou<0.3"
    old["fallback_rates"] = [{"unit": r["unit"], "n": r["n"], "iou<0.3": 0.25} for r in
                             shipped["fallback_rates"]]
    monkeypatch.setattr(seg_ref, "results", lambda: old)
    assert seg_ref.default_ensemble().fallback_entropy == 0.0  # off, not today's default
    said = [line for line in seg_ref.findings() if line.startswith("The per-image fallback")]
    unit = display_names_in(old["fallback_rates"][0]["unit"])
    assert said == [f"The per-image fallback keeps the handcrafted mask alone where IoU(HM, DEEP) "
                    f"< 0.3: on 25.0% of the images of {unit} at most, on 25.0% at least (before "
                    f"the set gate)."]
    never = copy.deepcopy(old)
    never["fallback"]["chosen"] = "0"
    never["defaults"]["ensemble"].update(fallback_iou=0.0, fallback_entropy=0.0)
    never["fallback_rates"] = [{"unit": r["unit"], "n": r["n"], "0": 0.0} for r in
                               shipped["fallback_rates"]]
    monkeypatch.setattr(seg_ref, "results", lambda: never)
    assert "The protocol chose no fallback: the ensemble always lets the U-Net vote." in (
        seg_ref.findings())


def test_the_set_gate_sentences_follow_the_recorded_choice(monkeypatch):
    """Which image sets keep their handcrafted masks, and what leave-one-dataset-out saw."""
    import copy

    from leukolib.segmentation import reference as seg_ref

    if not seg_ref.available():
        pytest.fail("leukolib/reference/segmentation.json is missing")
    r = copy.deepcopy(seg_ref.results())
    units = ["jtsc", "bloodseg -> jtsc", "jtsc -> bloodseg"]
    r["set_entropies"] = [{"unit": u, "median_entropy": e} for u, e in zip(units, (0.05, 0.42,
                                                                                0.1), strict=True)]
    r["defaults"]["ensemble"]["gate_entropy"] = 0.3
    r["set_gate"] = {"incumbent": "0", "chosen": "set entropy>0.3", "units": units,
                     "reason": "", "table": [],
                     "leave_one_out": [
                         {"held_out": "jtsc", "unit": "bloodseg -> jtsc", "chosen": "0",
                          "chosen_score": 0.87, "incumbent_score": 0.87, "all_chosen": "x",
                          "all_score": 0.9, "reason": ""},
                         {"held_out": "bloodseg", "unit": "bloodseg -> jtsc",
                          "chosen": "set entropy>0.3", "chosen_score": 0.9,
                          "incumbent_score": 0.87, "all_chosen": "x", "all_score": 0.9,
                          "reason": ""}]}
    monkeypatch.setattr(seg_ref, "results", lambda: r)
    t = seg_ref.set_entropies()
    assert list(t.index[t["handcrafted masks kept"]]) == ["bloodseg -> jtsc"]
    said = [line for line in seg_ref.findings() if "set gate" in line or "held out" in line]
    assert ("The set gate (median U-Net entropy above 0.3 bit) keeps the handcrafted masks of 1 "
            "of 3 image sets: SMC_IDB (BloodSeg) -> JTSC.") in said
    assert any(line.startswith("Chosen without the dataset of the pair, the protocol does not")
               and "-> JTSC (JTSC held out: no gate, 0.870 against 0.900)" in line
               and line.endswith("seen only with that dataset.") for line in said)
    assert any(line.startswith("Chosen without the dataset of the pair, the protocol still") and
               "JTSC (SMC_IDB (BloodSeg) held out: 'set entropy>0.3', 0.900)" in line
               for line in said)
    assert seg_ref.gate_sentence() in said
    r["defaults"]["ensemble"]["gate_entropy"] = 0.0
    assert not seg_ref.set_entropies()["handcrafted masks kept"].any()
    assert any(line.startswith("The protocol chose no set gate") and "0.42 bit, on SMC_IDB "
               "(BloodSeg) -> JTSC" in line for line in seg_ref.findings())


# ----------------------------------------------------------------------------- real data


GOLDEN_HM_IOU = {"jtsc": 0.9051, "all_idb2": 0.9239, "bloodseg": 0.8807}


@pytest.mark.shared
@pytest.mark.parametrize("name, folder", [("jtsc", "segmentation_WBC"), ("all_idb2", "ALL_IDB2"),
                                          ("bloodseg", "BloodSeg")])
def test_golden_handcrafted_iou(shared_data, name, folder):
    """Any change to the handcrafted algorithm or its defaults must be a visible decision."""
    ds = load_dataset(name, shared_data / folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossyMaskWarning)  # counted elsewhere
        iou = np.mean([segmentation_metrics(segment_nucleus(s.image), s.nucleus)["iou"]
                       for s in ds])
    assert iou == pytest.approx(GOLDEN_HM_IOU[name], abs=0.002)


@pytest.mark.shared
@pytest.mark.parametrize("name, folder, twins", [
    ("jtsc", "segmentation_WBC", ("112", "139")),
    ("all_idb2", "ALL_IDB2", ("Im223_0", "Im257_0")),
])
def test_duplicates_share_a_fold_on_the_shared_data(shared_data, name, folder, twins):
    ds = load_dataset(name, shared_data / folder)
    prints = dataset_fingerprints(ds)
    a, b = (ds.ids.index(t) for t in twins)
    assert prints[a] == prints[b]  # the same pixels under two names
    groups = split_groups(prints, ds.groups, near_duplicates=None)  # identical pixels alone
    for seed in (0, 1):
        for k in (5, 10):
            for f in kfold(len(ds), k, seed, groups=groups, labels=ds.labels, val_fraction=0.1):
                sides = [{a, b} & set(part) for part in (f.train, f.val, f.test)]
                assert sum(bool(s) for s in sides) == 1, (seed, k, f.index)  # never split
