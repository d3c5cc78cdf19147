"""The book's findings and verdicts follow the committed numbers (leukolib.findings)."""

from __future__ import annotations

import copy

import pytest

from leukolib import findings
from leukolib.book_checks import _NAN
from leukolib.notebook import claim_box, measured, real_data_findings

DATA = findings.shipped()
pytestmark = pytest.mark.skipif(DATA["segmentation"] is None,
                                reason="the committed segmentation results are not shipped")


def changed(name: str) -> dict:
    data = copy.deepcopy(DATA)
    return data, data[name]


@pytest.mark.parametrize("chapter", sorted(findings.CHAPTERS))
def test_every_chapter_says_something_without_nan(chapter):
    sentences = findings.chapter_findings(chapter, DATA)
    assert sentences
    for s in sentences:
        assert not _NAN.search(s), s


def test_a_changed_interval_changes_the_sentence():
    data, seg = changed("segmentation")
    row = next(r for r in seg["results"]["intervals"]
               if r["dataset"] == "jtsc" and r["method"] == "HM")
    before = findings.chapter_findings(2, DATA)[0]
    row["mean"], row["ci_low"], row["ci_high"] = 0.5, 0.4, 0.6
    after = findings.chapter_findings(2, data)[0]
    assert "JTSC 0.500 [0.400, 0.600]" in after and after != before


def test_the_word_better_follows_the_verdict():
    data, seg = changed("segmentation")
    row = next(r for r in seg["results"]["paired"] if r["dataset"] == "bloodseg"
               and r["trained_on"] == "bloodseg" and r["comparison"] == "ENSEMBLE - HM")
    row["verdict"] = "no significant difference"
    text = next(s for s in findings.chapter_findings(4, data) if s.startswith("SMC_IDB"))
    assert "Against HM: no significant difference" in text
    row["verdict"] = "ENSEMBLE better"
    text = next(s for s in findings.chapter_findings(4, data) if s.startswith("SMC_IDB"))
    assert "Against HM: ENSEMBLE better" in text


def test_the_set_gate_sentence_names_the_gated_sets():
    data, seg = changed("segmentation")
    r = seg["results"]
    r["set_gate"] = {"chosen": "set entropy>0.3"}
    r["set_entropies"] = [{"unit": "jtsc", "median_entropy": 0.05},
                          {"unit": "bloodseg -> jtsc", "median_entropy": 0.42}]
    r["defaults"]["ensemble"]["gate_entropy"] = 0.3
    said = findings.chapter_findings(4, data)
    assert ("The set gate (median U-Net entropy above 0.3 bit) keeps the handcrafted masks of 1 "
            "of 2 image sets: SMC_IDB (BloodSeg) -> JTSC.") in said
    r["defaults"]["ensemble"]["gate_entropy"] = 0.0
    assert any(s.startswith("The protocol chose no set gate") for s in
               findings.chapter_findings(4, data))


def test_the_paper_value_is_placed_against_our_interval():
    data, seg = changed("segmentation")
    row = next(r for r in seg["results"]["intervals"]
               if r["dataset"] == "bloodseg" and r["method"] == "ENSEMBLE")
    row["ci_low"], row["ci_high"] = 0.90, 0.93  # holds the paper's 0.920
    claim = findings.claims(data)[0]
    assert "SMC_IDB" in claim.evidence
    inside = findings.chapter_findings(4, data)
    assert any("0.920 (Table 2) lies inside our interval" in s for s in inside)
    row["ci_low"], row["ci_high"] = 0.80, 0.85
    below = findings.chapter_findings(4, data)
    assert any("0.920 (Table 2) lies above our interval" in s for s in below)
    assert findings.claims(data)[0].verdict == "not supported"


@pytest.mark.skipif(DATA["classification_all_idb2_cpu"] is None, reason="not shipped")
def test_segmented_claim_turns_with_the_mcnemar_counts():
    data, rep = changed("classification_all_idb2_cpu")
    rows = rep["grid"]["segmented_vs_raw"]
    for r in rows:  # every pair now won by the segmented model, by a wide margin
        r["segmented only right"], r["raw only right"] = 20, 0
        r["difference"], r["McNemar p"] = 0.5, 1e-6
    claim = next(c for c in findings.claims(data) if "segmented nucleus" in c.claim)
    assert claim.verdict == "supported"
    for r in rows:
        r["segmented only right"], r["raw only right"] = 0, 20
        r["difference"], r["McNemar p"] = -0.5, 1e-6
    claim = next(c for c in findings.claims(data) if "segmented nucleus" in c.claim)
    assert claim.verdict == "not supported" and "go against it" in claim.why


def test_tally_rule():
    assert findings._tally(2, 0, 4, 3)[0] == "supported"
    assert findings._tally(0, 1, 4, 3)[0] == "not supported"
    assert findings._tally(1, 1, 4, 3)[0] == "not supported"
    assert findings._tally(0, 0, 4, 3)[0] == "cannot tell"
    assert findings._tally(0, 0, 4, 2)[0] == "not supported"
    assert findings._tally(0, 0, 6, 3, 1)[0] == "cannot tell"  # ties point neither way
    assert findings._tally(0, 0, 6, 2, 2)[0] == "not supported"


def test_99_99_follows_the_pooled_splits():
    claim = next(c for c in findings.claims(DATA) if "99.99" in c.claim)
    splits = DATA["classification_all_idb2_cpu_splits"]["results"]["splits"]
    errors = sum(round((1 - r["its test acc"]) * r["n test"]) for r in splits)
    assert claim.verdict == ("not supported" if errors else "cannot tell")
    data, rep = changed("classification_all_idb2_cpu_splits")
    for r in rep["results"]["splits"]:
        r["its test acc"] = 1.0  # no error on any split: too few images to tell
    claim = next(c for c in findings.claims(data) if "99.99" in c.claim)
    assert claim.verdict == "cannot tell"
    assert str(findings.images_for_accuracy(0.9999)) in claim.why


def test_fusion_needs_both_parts_beaten_on_every_dataset():
    data, seg = changed("segmentation")
    rows = [r for r in seg["results"]["paired"] if r["dataset"] == r["trained_on"]]
    for r in rows:
        r["verdict"] = "ENSEMBLE better"
    assert next(c for c in findings.claims(data) if "Fusing" in c.claim).verdict == "supported"
    rows[0]["verdict"] = "no significant difference"
    assert next(c for c in findings.claims(data) if "Fusing" in c.claim).verdict == "cannot tell"
    rows[0]["verdict"] = "HM better"
    assert next(c for c in findings.claims(data) if "Fusing" in c.claim).verdict == \
        "not supported"


def test_every_claim_has_a_known_verdict_and_a_source():
    table = findings.claims_table(DATA)
    assert len(table) >= 6
    assert set(table["verdict"]) <= set(findings.VERDICTS)
    assert table["source"].str.contains("commit").all()


def test_boxes_render_html():
    claim = findings.claims(DATA)[0]
    html = claim_box(1, claim).data
    assert "Claim 1" in html and claim.verdict in html
    html = real_data_findings(4).data
    assert "What we found on real data" in html and "segmentation.json (cpu profile, commit" in html
    import pandas as pd

    box = measured("bloodseg", [pd.DataFrame({"a": [1.0]}), "from `cmd`"], "source line", "cpu",
                   "abc1234").data
    assert "Measured on SMC_IDB (BloodSeg) with the cpu profile, commit abc1234" in box
    assert "<table" in box and "<code>cmd</code>" in box


def test_chapter_4_folds_how_its_defaults_were_chosen():
    """The results stay in the main text; fold rules, mirroring, budget, ceiling, variants fold."""
    data = findings.shipped(findings.CHAPTER_SOURCES[4])  # what the page reads
    main, details = findings.chapter_main(4, data), findings.chapter_details(4, data)
    assert findings.chapter_findings(4, data) == main + details
    assert main and details and not set(main) & set(details)
    assert not any(s.startswith(("Each fold's own", "The budget rule", "U-Nets with more"))
                   for s in main)
    html = real_data_findings(4).data
    head, _, folded = html.partition("<details>")
    assert folded and all(_plain(s) in _plain(folded) for s in details)
    assert not any(_plain(s) in _plain(head) for s in details)
    assert f"({len(details)} findings, folded)" in folded
    assert findings.chapter_details(2, DATA) == []


def _plain(text: str) -> str:
    """Words only: the box renders backticks and escapes characters."""
    import html
    import re

    return " ".join(re.findall(r"[A-Za-z]+", html.unescape(re.sub(r"<[^>]+>", "", text))))


def test_the_source_line_names_a_classification_report_s_profile_not_its_settings():
    """A classification report keeps its profile's settings under "profile" (a dict)."""
    from leukolib.findings import source_line

    data = {"classification_jtsc_cpu": {
        "command": "python benchmarks/classification_report.py --profile cpu --datasets jtsc",
        "commit": "7ec6b7a", "date": "2026-12-04T18:36:58+00:00",
        "profile": {"image_size": 112, "epochs": 8, "lr": 0.0001}}}
    line = source_line(["classification_jtsc_cpu"], data)
    assert "classification_jtsc_cpu.json (cpu profile, commit 7ec6b7a, 2026-12-04)" in line
    assert "image_size" not in line and "{" not in line


def test_the_kept_handcrafted_settings_are_named_once():
    from leukolib import findings

    kept = [s for s in findings.chapter_findings(2) if "kept the paper's settings" in s]
    if not kept:
        pytest.skip("the shipped report replaced the paper's handcrafted settings")
    incumbent = findings.shipped()["segmentation"]["results"]["handcrafted"]["incumbent"]
    assert kept[0].count(incumbent) == 1 and "beat them" in kept[0]


def test_the_ceiling_sentence_follows_the_bound():
    data = findings.shipped(findings.CHAPTER_SOURCES[4])
    if data.get("seg_ceiling") is None:
        pytest.skip("seg_ceiling.json is not shipped")
    data = copy.deepcopy(data)
    summary = data["seg_ceiling"]["results"]["summary"]
    row = summary["bloodseg"]
    row["best_post_processing_iou"] = row["oracle_per_image_iou"] = row["target"] - 0.01
    said = findings.chapter_findings(4, data)
    assert any(s.startswith("Out of reach") and "SMC_IDB (BloodSeg)" in s for s in said)
    for r in summary.values():
        r["best_post_processing_iou"] = r["target"] - 0.01
        r["oracle_per_image_iou"] = r["target"] + 0.01
    said = findings.chapter_findings(4, data)
    assert not any(s.startswith(("Out of reach", "Within reach of one")) for s in said)
    assert any(s.startswith("Within reach only of a per-image pick") for s in said)


def test_the_fold_rule_sentence_follows_the_protocols_decision():
    data = copy.deepcopy(DATA)
    seg = data["segmentation"]["results"]
    sets = ["jtsc", "all_idb2", "bloodseg"]
    table = [{"candidate": "global", **dict.fromkeys(sets, 0.90)},
             {"candidate": "per fold", **dict.fromkeys(sets, 0.91)}]
    lodo = [{"held_out": d, "unit": d, "chosen": "per fold", "chosen_score": 0.91}
            for d in sets]
    seg["fold_fusion"] = {
        "chosen": "per fold", "reason": "'per fold' lost on none", "table": table,
        "leave_one_out": lodo,
        "consistent_rule": {"leave_one_out": [dict(r, chosen="global") for r in lodo]},
        "runs": {"jtsc": {"folds": [{"chosen": "AND t=0.3"}, {"chosen": "AND t=0.3"},
                                    {"chosen": "global"}]}}}
    said = findings.chapter_findings(4, data)
    fold = next(s for s in said if s.startswith("Each fold's own fusion"))
    assert "Taken by the no-harm rule" in fold and "JTSC 0.9000 -> 0.9100" in fold
    assert any("AND t=0.3 (2 of 3), global (1 of 3)" in s for s in said)
    assert any("would be per fold for none of them" in s for s in said)
    seg["fold_fusion"]["chosen"] = "global"
    said = findings.chapter_findings(4, data)
    assert any("Not taken" in s for s in said if s.startswith("Each fold's own fusion"))
    del seg["fold_fusion"]  # a report that predates the fold rules says nothing of them
    assert not any(s.startswith("Each fold's own") for s in findings.chapter_findings(4, data))


def test_a_target_the_ensemble_reached_is_said_so():
    data = copy.deepcopy(findings.shipped(findings.CHAPTER_SOURCES[4]))
    if data.get("seg_ceiling") is None:
        pytest.skip("seg_ceiling.json is not shipped")
    summary = data["seg_ceiling"]["results"]["summary"]
    for r in summary.values():
        r["target"] = 0.5  # below every shipped ensemble
    said = findings.chapter_findings(4, data)
    assert any(s.startswith("Reached by the ensemble as shipped") for s in said)
    assert not any(s.startswith(("Within reach", "Out of reach")) for s in said)


def test_the_mirroring_sentence_follows_the_rule_and_its_held_out_choices():
    data = copy.deepcopy(DATA)
    seg = data["segmentation"]["results"]
    sets = ["jtsc", "all_idb2", "bloodseg"]
    table = [{"candidate": "none", **dict.fromkeys(sets, 0.90), "mean_gain": 0.0, "spread": 0.0},
             {"candidate": "flips", "jtsc": 0.901, "all_idb2": 0.905, "bloodseg": 0.901,
              "mean_gain": 0.002, "spread": 0.004}]
    lodo = [{"held_out": d, "unit": d, "chosen": "flips" if d == "jtsc" else "none"}
            for d in sets]
    seg["tta"] = {"incumbent": "none", "chosen": "none", "reason": "no candidate", "table": table,
                  "leave_one_out": lodo, "no_harm_rule": {"chosen": "flips"}}
    said = findings.chapter_findings(4, data)
    assert any("JTSC 0.9000 -> 0.9010" in s for s in said)
    text = next(s for s in said if s.startswith("Not taken by the rule of the fixed defaults"))
    assert "+0.0020 does not exceed the spread of its gains, 0.0040" in text
    assert "Chosen without JTSC (the other" in text and "no-harm rule would choose 'flips'" in text
    seg["tta"]["chosen"], table[1]["spread"] = "flips", 0.001
    said = findings.chapter_findings(4, data)
    text = next(s for s in said if s.startswith("Taken by the rule"))
    assert "exceeds the spread" in text and "Chosen without" not in text
    del seg["tta"]  # a report that predates the mirroring says nothing of it
    assert not any("mirroring" in s for s in findings.chapter_findings(4, data))


def _variants(chosen: str | None) -> dict:
    runs = {"epochs8": {d: {"num_res_units": 0, "epochs": 8, "ensemble_iou": 0.92}
                        for d in ("jtsc", "all_idb2")},
            "res2": {d: {"num_res_units": 2, "epochs": 8, "ensemble_iou": 0.90}
                     for d in ("jtsc", "all_idb2")},
            "budget": {"jtsc": {"num_res_units": 0, "epochs": 26, "ensemble_iou": 0.93,
                                "continues_incumbent": True}}}
    paired = [{"variant": v, "dataset": d, "method": "ENSEMBLE", "mean_diff": 0.01,
               "ci_low": 0.005, "ci_high": 0.02, "wilcoxon_p_holm": 0.01,
               "verdict": f"{v} better"} for v in ("res2", "budget") for d in runs[v]]
    times = [{"variant": v, "dataset": d, "ratio": 2.0 if v == "res2" else 3.0,
              "shipped_seconds": 1000.0, "limit_seconds": 2500.0}
             for v in ("res2", "budget") for d in runs[v]]
    choice = None if chosen is None else {"chosen": chosen, "reason": "because"}
    return {"provenance": {"commit": "abc"},
            "results": {"incumbent": "epochs8", "variants": ["epochs8", "res2", "budget"],
                        "library": "epochs8", "datasets": ["jtsc", "all_idb2"],
                        "runs": runs, "paired": paired, "training_time": times,
                        "choice": choice, "not_candidates": ["budget"]}}


def _interval_mean(data: dict, dataset: str) -> float:
    rows = data["segmentation"]["results"]["intervals"]
    return next(r["mean"] for r in rows if r["dataset"] == dataset and r["method"] == "ENSEMBLE")


def test_the_variants_sentence_gives_each_variant_and_the_rules_verdict():
    data = copy.deepcopy(DATA)
    data["unet_variants_cpu"] = _variants("epochs8")
    said = [s for s in findings.chapter_findings(4, data)
            if s.startswith("U-Nets with more capacity")]
    assert len(said) == 1
    s = said[0]
    assert s.startswith("U-Nets with more capacity or more training, against `epochs8` (MONAI's "
                        "num_res_units 0, 8 epochs) on its folds")
    assert "`res2` (num_res_units 2): JTSC (8 epochs) 0.9200 -> 0.9000, res2 better (" in s
    assert "`budget` (num_res_units 0): JTSC (26 epochs) 0.9200 -> 0.9300" in s
    assert "3.00 times as long, where the time limit allows 2.50" in s
    assert "2.00 times as long, where the time limit allows 2.50" in s
    shipped = _interval_mean(data, "jtsc")
    assert f"JTSC 0.9200 against the report's {shipped:.4f}" in s
    assert ("The rule of the fixed defaults, on JTSC and ALL-IDB2, keeps `epochs8`: no variant "
            "gained on each of them by more than the spread of its gains. `budget` was trained "
            "on JTSC only, so the rule could not weigh it. The library trains `epochs8`. "
            "`epochs8` was retrained here for the comparison; the report's numbers come from its "
            "runs as shipped: JTSC 0.9200 against") in s
    assert s.endswith("Each run of `budget` began with `epochs8`'s very epochs (the same "
                      "validation IoU, epoch for epoch), so the model it kept was chosen among "
                      "those epochs and the ones after.")
    data["unet_variants_cpu"] = _variants("res2")
    s = next(s for s in findings.chapter_findings(4, data)
             if s.startswith("U-Nets with more capacity"))
    assert "takes `res2`: a gain on each of them, above the spread of its gains." in s
    data["unet_variants_cpu"] = _variants(None)
    data["unet_variants_cpu"]["results"]["library"] = "res2"
    s = next(s for s in findings.chapter_findings(4, data)
             if s.startswith("U-Nets with more capacity"))
    assert "weighed none against `epochs8`. The library trains `res2`, by the budget rule" in s
    assert "`res2` was retrained here for the comparison; the report's numbers come from its " \
        "runs as shipped: JTSC 0.9000 against the report's" in s
    del data["unet_variants_cpu"]["results"]["library"]  # a file before the key: the incumbent's
    s = next(s for s in findings.chapter_findings(4, data)
             if s.startswith("U-Nets with more capacity"))
    assert "The library trains" not in s
    assert "`epochs8` was retrained here for the comparison" in s and "JTSC 0.9200 against" in s
    data["unet_variants_cpu"]["results"]["library"] = None  # the profile trains none of them
    s = next(s for s in findings.chapter_findings(4, data)
             if s.startswith("U-Nets with more capacity"))
    assert "The library trains" not in s and "retrained here" not in s
    del data["unet_variants_cpu"]
    assert not any(s.startswith("U-Nets with more capacity")
                   for s in findings.chapter_findings(4, data))


def test_the_budget_sentence_gives_the_epochs_and_every_cell_before_and_after():
    data = copy.deepcopy(DATA)
    seg = data["segmentation"]["results"]
    seg.pop("before_budget", None)
    assert not any(s.startswith("The budget rule") for s in findings.chapter_findings(4, data))
    rows = copy.deepcopy(seg["generalization"]["ENSEMBLE"])
    for r in rows:
        for k in ("jtsc", "all_idb2", "bloodseg"):
            r[k] -= 0.01
    seg["before_budget"] = {"generalization": {"ENSEMBLE": rows},
                            "unet_runs": {d: {"epochs": 8} for d in seg["unet_runs"]}}
    s = next(s for s in findings.chapter_findings(4, data) if s.startswith("The budget rule"))
    now = {r["trained on"]: r for r in seg["generalization"]["ENSEMBLE"]}
    j = now["jtsc"]["jtsc"]
    assert f"JTSC 8 -> {seg['unet_runs']['jtsc']['epochs']}" in s
    assert f"mean IoU JTSC {j - 0.01:.4f} -> {j:.4f}" in s
    a = now["bloodseg"]["all_idb2"]
    assert f"{findings.display_name('bloodseg')} -> ALL-IDB2 {a - 0.01:.4f} -> {a:.4f}" in s
    assert s.count(" -> ") == 3 + 3 + 6 * 2


def test_a_verdict_without_significance_says_which_test_saw_a_difference():
    """Both tests must agree for a verdict; the sentence says which one alone saw a difference."""
    row = {"verdict": "no significant difference", "mean_diff": 0.003, "ci_low": -0.001,
           "ci_high": 0.005, "wilcoxon_p_holm": 2.5e-15}
    said = findings._paired_text(row)
    assert said.endswith("the signed-rank test sees a difference, the mean's interval holds 0)")
    row.update(ci_low=0.001, wilcoxon_p_holm=0.2)
    assert findings._paired_text(row).endswith("the mean differs, the image-by-image ranks do not)")
    row.update(ci_low=-0.001)
    assert findings._paired_text(row).endswith("p = 0.2)")


def test_the_cross_pairs_without_a_verdict_are_named_with_their_numbers():
    """A pair the gate gave HM's masks is identical, not 'no significant difference'."""
    data, seg = changed("segmentation")
    rows = [r for r in seg["results"]["paired"]
            if r["comparison"] == "ENSEMBLE - HM" and r["dataset"] != r["trained_on"]]
    for r in rows:  # one identical pair, one undecided, the rest decided
        r.update(verdict="ENSEMBLE better", degenerate=False, mean_diff=0.01)
    rows[0].update(verdict="no significant difference", degenerate=True, mean_diff=0.0)
    rows[1].update(verdict="no significant difference", ci_low=-0.001, ci_high=0.005)
    s = next(s for s in findings.chapter_findings(4, data) if s.startswith("With the U-Net"))
    first = f"{findings.display_name(rows[0]['trained_on'])} -> "
    assert "Identical to HM, image for image: " + first in s
    assert s.count("no significant difference (") == 1 and "Without a verdict: " in s


def test_chapter_7_names_the_ensemble_its_sweep_ran():
    from leukolib.segmentation.ensemble import EnsembleParams

    data, rob = changed("robustness")
    sweeps = [v["segmentation"] for v in rob["results"].values()
              if isinstance(v, dict) and v.get("segmentation")]
    for label, end in (("AND, p >= 0.5", "AND, p >= 0.5, not the library's default of today."),
                       (EnsembleParams().label(), f"{EnsembleParams().label()}.")):
        for sweep in sweeps:
            sweep["ensemble"] = label
        said = [s for s in findings.chapter_findings(7, data) if "sweep's ENSEMBLE" in s]
        assert len(said) == len(sweeps) >= 1 and all(s.endswith(end) for s in said)
