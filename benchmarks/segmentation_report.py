"""The segmentation results on the shared datasets: defaults chosen by protocol, held-out numbers.

Usage::

    python benchmarks/segmentation_report.py --profile cpu --shared ../shared/data \\
        --runs runs --out /tmp/seg_report

For the datasets found under ``--shared`` (JTSC, ALL-IDB2, SMC_IDB), it

1. scores every handcrafted candidate
   (:func:`leukolib.segmentation.selection.handcrafted_candidates`) and applies the
   selection rule (:mod:`leukolib.selection`) on all datasets and leave-one-dataset-out;
2. trains (or reuses) the profile's k-fold U-Net of each dataset into
   ``RUNS/unet_<dataset>_<profile>_seed<seed>``; on JTSC also a run with the paper's
   Table A2 hyper-parameters, and decides which the profile uses;
3. evaluates every run on every dataset (out-of-fold on its own, the fold average
   elsewhere) with HM, DEEP and every candidate rule (thresholds, fusions, area openings,
   fallbacks), and chooses each default in turn, in-domain and across datasets,
   leave-one-dataset-out (the fallback, a safety switch, by the no-harm rule);
4. evaluates the chosen defaults once more (HM, DEEP, ENSEMBLE and the other fusions),
   decides on that pass whether each fold's own fusion, chosen on its validation images
   (:mod:`leukolib.segmentation.fold_fusion`), replaces the global one on the run's own
   images (no-harm rule, in-domain, leave-one-dataset-out), then the set gate (whether a
   whole image set, out of the U-Net's domain, keeps its handcrafted masks; no-harm rule,
   leave-one-dataset-out), and writes the
   report files into ``--out`` and the reference results that the book renders into
   ``leukolib/reference/segmentation.json`` (``--no-reference`` to skip).

Every per-image table is cached in ``--out``; a second call reuses them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

DATASETS = (("jtsc", "segmentation_WBC"), ("all_idb2", "ALL_IDB2"), ("bloodseg", "BloodSeg"))
FOLD_METHOD = "ENSEMBLE per fold"  # scored beside ENSEMBLE, then folded into it when chosen
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_dir_name(dataset: str, profile: str, seed: int, suffix: str = "") -> str:
    """Run folder name, as notebook 03 names it."""
    return f"unet_{dataset}_{profile}_seed{seed}{suffix}"


def _cached(path: Path, compute):
    import pandas as pd

    if path.is_file():
        return pd.read_csv(path, dtype={"id": str})
    frame = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


def _choice_record(choice, lodo=None) -> dict:
    rec = {"incumbent": choice.incumbent, "chosen": choice.chosen, "units": choice.units,
           "reason": choice.reason,
           "table": choice.table.rename_axis("candidate").reset_index()
           .to_dict(orient="records")}
    if lodo is not None:
        rec["leave_one_out"] = lodo.to_dict(orient="records")
    return rec


def _cross_units(datasets):
    """LODO for pairs: without H, the pairs free of H choose; the pairs evaluated on H report."""
    def units(held):
        choosing = [f"{t} -> {e}" for t in datasets for e in datasets
                    if t != e and held not in (t, e)]
        reporting = [f"{t} -> {held}" for t in datasets if t != held]
        return choosing, reporting
    return units


def _all_units(datasets):
    """LODO over in-domain units and pairs: what involves H reports, the rest chooses."""
    def units(held):
        every = [*datasets, *(f"{t} -> {e}" for t in datasets for e in datasets if t != e)]
        reporting = [held, *(f"{t} -> {held}" for t in datasets if t != held)]
        choosing = [u for u in every if held not in u.split(" -> ")]
        return choosing, reporting
    return units


def table_a2_comparison(args, prof, jtsc, root, ours_run, progress: bool) -> dict:
    """Train (or reuse) the JTSC U-Net with Table A2's values; compare it with ``ours_run``."""
    import pandas as pd

    from leukolib.paper import UNET_HPARAMS
    from leukolib.segmentation.hparams import UNetHParams
    from leukolib.segmentation.training import train_unet
    from leukolib.segmentation.unet import load_unet_run
    from leukolib.stats import paired_comparison

    rd = args.runs / run_dir_name("jtsc", prof.name, args.seed, "_tableA2")
    hp = UNetHParams(**UNET_HPARAMS["jtsc"], source="paper")
    train_unet(jtsc, rd, profile=prof, seed=args.seed, hparams=hp, data_root=root,
               progress=progress)
    ours = pd.DataFrame(ours_run.per_image).set_index("id")["iou"]
    theirs = pd.DataFrame(load_unet_run(rd).per_image).set_index("id")["iou"]
    cmp = paired_comparison(ours[theirs.index], theirs, names=("defaults", "Table A2"),
                            n_boot=args.n_boot, seed=args.seed)
    print("\nU-Net hyper-parameters on JTSC (out-of-fold IoU):", cmp)
    return {"dataset": "jtsc", "epochs": ours_run.record["config"]["epochs"],
            "defaults": ours_run.record["hparams"],
            "table_a2": UNET_HPARAMS["jtsc"], "comparison": cmp,
            "defaults_oof_iou": float(ours.mean()), "table_a2_oof_iou": float(theirs.mean()),
            "profile_uses": prof.segmentation.hparams}


def _carried_table_a2(ours_run) -> dict | None:
    """The shipped Table A2 comparison, kept when this report does not train it again.

    Returned as it is (with its epochs) when it compared ``ours_run`` itself (the same
    out-of-fold mean IoU), else kept and marked with the epochs it was made at, the command
    that made it and a note saying what it no longer describes; ``None`` when none is shipped.
    """
    from leukolib import reference

    if ours_run is None or not reference.available("segmentation"):
        return None
    shipped = reference.load("segmentation")
    prev = shipped["results"].get("unet_hparams") or {}
    if "comparison" not in prev:
        return None
    epochs = ours_run.record["config"]["epochs"]
    made = prev.get("epochs") or shipped["results"].get("unet_runs", {}).get("jtsc", {}).get(
        "epochs")
    same = abs(float(prev.get("defaults_oof_iou", -1.0)) - ours_run.summary["iou"]["mean"])
    if same < 1e-9 and "made_by" not in prev:
        return {**prev, "epochs": made}
    length = (f"both U-Nets trained for {made} epochs" if made is not None else
              "the U-Nets' epochs were not recorded")
    return {**{k: v for k, v in prev.items() if k != "note"}, "epochs": made,
            "made_by": prev.get("made_by") or shipped["provenance"]["command"],
            "note": f"{length}; the report's own run is another one ({epochs} epochs), and "
                    f"Table A2 was not trained again at its length"}


def _before_budget(prev: dict, runs: dict, epochs: int) -> bool:
    """Whether the shipped report ``prev`` holds the runs before the budget rule.

    True when it is at the nucleus scale, every one of its runs trained for the profile's
    ``epochs`` and this report's ``runs`` hold every one of its datasets, some of them
    trained for other epochs (a partial rerun never replaces the record).
    """
    before = prev.get("unet_runs") or {}
    return ("scale" in prev and bool(before) and set(before) <= set(runs)
            and all(r.get("epochs") == epochs for r in before.values())
            and any(runs[d]["epochs"] != epochs for d in before))


def _table_a2_only(args, prof, jtsc, root, progress: bool, argv) -> int:
    """Add the Table A2 comparison to the shipped results; both commands go in the provenance."""
    from leukolib import reference
    from leukolib.segmentation.unet import load_unet_run

    shipped = reference.load("segmentation")
    ours = load_unet_run(args.runs / run_dir_name("jtsc", prof.name, args.seed))
    shipped["results"]["unet_hparams"] = table_a2_comparison(args, prof, jtsc, root, ours,
                                                             progress)
    cmd = "python benchmarks/segmentation_report.py " + " ".join(
        a if not a.startswith("/") else Path(a).name for a in (argv or sys.argv[1:]))
    path = reference.write("segmentation", shipped["results"],
                           f"{shipped['provenance']['command']} ; {cmd}", prof.name)
    print(f"\nwrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - a script, step by step
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--datasets", default="", help="comma-separated subset (default: all found)")
    ap.add_argument("--n-boot", type=int, default=10_000)
    ap.add_argument("--no-reference", action="store_true", help="do not write the reference JSON")
    ap.add_argument("--no-table-a2", action="store_true",
                    help="skip the U-Net with the paper's Table A2 hyper-parameters (recorded)")
    ap.add_argument("--table-a2-only", action="store_true",
                    help="train (or reuse) only the Table A2 run and add its comparison to the "
                    "shipped reference results (after a --no-table-a2 report)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from leukolib import reference
    from leukolib.data import limit_dataset, load_dataset
    from leukolib.errors import LeukolibError
    from leukolib.metrics import SEGMENTATION_METRICS
    from leukolib.profiles import get_profile
    from leukolib.segmentation.ensemble import ENSEMBLE, EnsembleParams
    from leukolib.segmentation.evaluate import (
        Evaluation,
        apply_set_gate,
        evaluate_segmentation,
        set_entropies,
        standard_methods,
    )
    from leukolib.segmentation.figures import failure_gallery
    from leukolib.segmentation.fold_fusion import FOLD_FUSION, PER_FOLD_LABEL, FoldFusionRule
    from leukolib.segmentation.generalization import matrix
    from leukolib.segmentation.handcrafted import HandcraftedParams
    from leukolib.segmentation.report import (
        fallback_rates,
        iou_intervals,
        overall_table,
        paired_table,
        paper_table,
        save_report,
    )
    from leukolib.segmentation.selection import (
        ENSEMBLE_INCUMBENT,
        HANDCRAFTED_INCUMBENT,
        candidate_rules,
        fallback_candidates,
        fusion_candidates,
        gate_candidates,
        gate_scores,
        handcrafted_candidates,
        score_handcrafted,
        unit_means,
    )
    from leukolib.segmentation.training import train_unet
    from leukolib.segmentation.tta import TTA, VIEW_SETS, VIEWS
    from leukolib.segmentation.unet import load_unet_run
    from leukolib.selection import choose, leave_one_out

    warnings.simplefilter("ignore")  # repaired-mask warnings: counted in the tables instead
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    t_start = time.perf_counter()
    prof, progress, out = get_profile(args.profile), not args.quiet, args.out
    out.mkdir(parents=True, exist_ok=True)
    wanted = [d for d in args.datasets.split(",") if d]
    data, roots = {}, {}
    for name, folder in DATASETS:
        if wanted and name not in wanted:
            continue
        try:
            data[name] = limit_dataset(load_dataset(name, args.shared / folder),
                                       prof.data.max_images, args.seed)
            roots[name] = (args.shared / folder).resolve()
        except (LeukolibError, OSError) as exc:
            print(f"{name}: skipped ({exc})", flush=True)
    names = list(data)
    results: dict = {"datasets": {d: {"n_images": len(ds)} for d, ds in data.items()}}

    # 1. handcrafted defaults ----------------------------------------------------------
    per_hm = _cached(out / "handcrafted_candidates.csv",
                     lambda: score_handcrafted(data, handcrafted_candidates(), progress))
    hm_scores = unit_means(per_hm, "", column="candidate")
    hm_choice = choose(hm_scores, HANDCRAFTED_INCUMBENT)
    results["handcrafted"] = _choice_record(hm_choice, leave_one_out(hm_scores,
                                                                     HANDCRAFTED_INCUMBENT))
    print("\nhandcrafted candidates (mean IoU)\n", hm_scores.round(4), "\n", hm_choice.reason)
    hm_params = handcrafted_candidates()[hm_choice.chosen]

    # 2. U-Nets, and the paper's Table A2 against our defaults ---------------------------
    if args.table_a2_only:
        return _table_a2_only(args, prof, data["jtsc"], roots["jtsc"], progress, argv)
    runs = {}
    for name, ds in data.items():
        rd = args.runs / run_dir_name(name, prof.name, args.seed)
        train_unet(ds, rd, profile=prof, seed=args.seed, data_root=roots[name], progress=progress)
        runs[name] = load_unet_run(rd, tta=VIEW_SETS[0])  # one view until the views are chosen
    if args.no_table_a2:
        results["unet_hparams"] = _carried_table_a2(runs.get("jtsc")) or {
            "dataset": "jtsc", "skipped": "run with --no-table-a2",
            "profile_uses": prof.segmentation.hparams}
    elif "jtsc" in data:
        results["unet_hparams"] = table_a2_comparison(args, prof, data["jtsc"], roots["jtsc"],
                                                      runs["jtsc"], progress)
    results["unet_runs"] = {
        d: {"oof_iou": r.summary["iou"]["mean"], "oof_iou_std": r.summary["iou"]["std"],
            "hparams_source": r.record["config"]["hparams_source"],
            "folds": r.n_folds, "epochs": r.record["config"]["epochs"],
            "image_size": r.image_size, "total_seconds": r.record["timings"]["total_seconds"],
            "mean_epoch_seconds": r.record["timings"]["mean_epoch_seconds"],
            "n_groups": r.record["dataset"].get("n_groups"),
            # the split itself, so that benchmarks/split_audit.py checks it against the detector
            "seed": r.record["config"]["seed"], "grouping": r.record["config"].get("groups"),
            "fold_test_ids": [f["test_ids"] for f in r.record["folds"]]}
        for d, r in runs.items()}

    # 3. every run on every dataset with every candidate rule ----------------------------
    def candidates_pass(base: EnsembleParams, tag: str):
        def compute():
            parts = []
            for t, run in runs.items():
                for ds in data.values():
                    m = standard_methods(run.predictor_for(ds), ensemble=base,
                                         handcrafted=lambda im: _hm(im),
                                         extra=candidate_rules(base), fold_fusion=False)
                    ev = evaluate_segmentation(ds, m, trained_on=t, progress=progress)
                    parts.append(ev.per_image)
            return pd.concat(parts, ignore_index=True)
        # the cache is keyed by what it holds: a folder left by another version is not reused
        key = hashlib.sha1(json.dumps([base.to_dict(), sorted(candidate_rules(base))],
                                      sort_keys=True).encode()).hexdigest()[:8]
        return _cached(out / f"candidates_{tag}_{key}.csv", compute)

    from leukolib.segmentation.handcrafted import segment_nucleus

    def _hm(image):
        return segment_nucleus(image, hm_params)

    base = ENSEMBLE_INCUMBENT  # the paper's ensemble; the library's default is the result
    per = candidates_pass(base, "base")
    in_domain = per[per["trained_on"] == per["dataset"]]
    cross = per[per["trained_on"] != per["dataset"]]
    thr = unit_means(in_domain, "t=")
    thr_choice = choose(thr, f"{base.threshold:g}")
    results["threshold"] = _choice_record(thr_choice, leave_one_out(thr, thr_choice.incumbent))
    chosen_t = float(thr_choice.chosen)
    if chosen_t != base.threshold:
        base = replace(base, threshold=chosen_t)
        per = candidates_pass(base, f"t{chosen_t:g}")
        in_domain = per[per["trained_on"] == per["dataset"]]
        cross = per[per["trained_on"] != per["dataset"]]
    print("\nU-Net threshold (DEEP, out-of-fold mean IoU)\n", thr.round(4), "\n", thr_choice.reason)

    fus_in = unit_means(in_domain, "fusion ")
    fus_x = unit_means(cross, "fusion ") if len(cross) else None
    fus_in_choice = choose(fus_in, "AND")
    results["fusion_in_domain"] = _choice_record(fus_in_choice, leave_one_out(fus_in, "AND"))
    print("\nfusion, in-domain\n", fus_in.round(4), "\n", fus_in_choice.reason)
    if fus_x is not None and len(names) > 2:
        fus_x_choice = choose(fus_x, "AND")
        results["fusion_cross"] = _choice_record(
            fus_x_choice, leave_one_out(fus_x, "AND", _cross_units(names), names))
        print("\nfusion, across datasets\n", fus_x.round(4), "\n", fus_x_choice.reason)
    else:
        fus_x_choice = fus_in_choice
    # One ensemble for both uses unless the measurements disagree; then both are reported.
    chosen_fusion = fusion_candidates(base)[fus_in_choice.chosen]
    results["fusion_uses_agree"] = fus_in_choice.chosen == fus_x_choice.chosen
    area = unit_means(in_domain, "area ") if chosen_fusion == base else None
    if area is None:  # area candidates were scored with the base fusion: score them again
        base = chosen_fusion
        per = candidates_pass(base, f"{base.fusion}{base.soft_weight:g}")
        in_domain = per[per["trained_on"] == per["dataset"]]
        area = unit_means(in_domain, "area ")
    area_choice = choose(area, f"{base.min_area}")
    results["area_opening"] = _choice_record(area_choice,
                                             leave_one_out(area, area_choice.incumbent))
    print("\narea opening\n", area.round(4), "\n", area_choice.reason)
    final = replace(chosen_fusion, min_area=int(area_choice.chosen))

    # the fallback to the handcrafted mask where the two disagree: a safety switch, no-harm rule
    if final != base:  # the last pass scored another ensemble: again
        per = candidates_pass(final, f"final{final.fusion}{final.min_area}")
    fallback = unit_means(per, "fallback ")
    fb_choice = choose(fallback, "0", criterion="no-harm")
    results["fallback"] = _choice_record(
        fb_choice, leave_one_out(fallback, "0", _all_units(names), names, criterion="no-harm"))
    print("\nfallback to HM alone (IoU(HM, DEEP) below, the U-Net's entropy above)\n",
          fallback.round(4), "\n", fb_choice.reason)
    fb_rules = fallback_candidates(final)
    final = fb_rules[fb_choice.chosen]

    # 4. the chosen defaults, and the tables of the book ---------------------------------
    alternatives = {k: v for k, v in fusion_candidates(final).items() if v != final}
    alternatives = {k: alternatives[k] for k in ("AND", "OR", "SOFT w=0.75") if k in alternatives}

    def final_pass(tta: str, which: str = "all"):
        """Runs on datasets with ``final``, the U-Nets seeing ``tta``'s views.

        ``which``: ``"all"`` pairs, the ``"in-domain"`` ones or the ``"cross"`` ones.
        """
        parts, preds, rules, sources = {}, {}, {}, {}
        t0 = time.perf_counter()
        for t, run in runs.items():
            run.tta = tta
            for ds in data.values():
                if which != "all" and (t == ds.name) != (which == "in-domain"):
                    continue
                pred = preds[t, ds.name] = run.predictor_for(ds)
                # the global rule as ENSEMBLE, and beside it each fold's own rule (the same
                # rule on images no fold held out: the other datasets)
                per_fold = FoldFusionRule(pred, final, _hm)
                m = standard_methods(pred, ensemble=final, alternatives=alternatives,
                                     handcrafted=_hm, fold_fusion=False,
                                     extra={FOLD_METHOD: per_fold})
                part = evaluate_segmentation(ds, m, trained_on=t, progress=progress)
                if t == ds.name:
                    rules[t] = pred.fold_fusions(final, _hm)
                sources[f"{t} -> {ds.name}"] = part.info[ds.name].get("scale_sources")
                parts[t, ds.name] = part
            run.tta = VIEW_SETS[0]  # the candidate passes' single view, again
        return parts, preds, rules, sources, time.perf_counter() - t0

    def joined(parts: dict) -> Evaluation:
        """One evaluation of a pass's parts, in the order of a pass over every pair."""
        return Evaluation.concat([parts[t, d] for t in runs for d in data if (t, d) in parts])

    key = ["trained_on", "dataset", "id"]

    def fold_into(ev: Evaluation, use: bool) -> Evaluation:
        """ENSEMBLE with the per-fold scores where ``use`` (identical away from own images)."""
        per = ev.per_image
        metrics = [c for c in SEGMENTATION_METRICS if c in per]
        away = per[per["trained_on"] != per["dataset"]]
        a, b = (away[away["method"] == m].set_index(key)[metrics].sort_index()
                for m in (ENSEMBLE, FOLD_METHOD))
        assert a.equals(b), "away from its own images the per-fold rule must be the global one"
        if use:
            per = per.copy()
            folds = per[per["method"] == FOLD_METHOD].set_index(key)[metrics]
            rows = per["method"] == ENSEMBLE
            per.loc[rows, metrics] = folds.loc[pd.MultiIndex.from_frame(
                per.loc[rows, key])].to_numpy()
        per = per[per["method"] != FOLD_METHOD].reset_index(drop=True)
        return Evaluation(per, ev.agreement, list(ev.failures), ev.info)

    passes = {VIEW_SETS[0]: final_pass(VIEW_SETS[0])}
    parts, preds, fold_rules, sources, _ = passes[VIEW_SETS[0]]
    ev = joined(parts)
    # each fold's own fusion, chosen on its validation images: an adaptive rule that acts
    # differently on each dataset by design, so it is judged like the safety switches (no-harm
    # rule) on the in-domain units, where it acts; the consistent rule's verdict is kept beside
    per = ev.per_image
    own = per[(per["trained_on"] == per["dataset"]) & per["method"].isin([ENSEMBLE, FOLD_METHOD])]
    fold_scores = (own.groupby(["method", "dataset"], sort=False)["iou"].mean().unstack("dataset")
                   .rename(index={ENSEMBLE: "global", FOLD_METHOD: "per fold"})
                   .reindex(["global", "per fold"]))
    fold_choice = choose(fold_scores, "global", criterion="no-harm")
    results["fold_fusion"] = {
        **_choice_record(fold_choice, leave_one_out(fold_scores, "global", criterion="no-harm")),
        "consistent_rule": _choice_record(choose(fold_scores, "global"),
                                          leave_one_out(fold_scores, "global")),
        "runs": {t: (r.to_dict() if r is not None else None) for t, r in fold_rules.items()}}
    print("\neach fold's own fusion (in-domain mean IoU)\n", fold_scores.round(4), "\n",
          fold_choice.reason)
    use_fold = fold_choice.chosen == "per fold"
    evs = {VIEW_SETS[0]: fold_into(ev, use_fold)}
    # test-time mirroring (leukolib.segmentation.tta): a uniform change of the U-Net's output,
    # chosen like the fusion, by the consistent rule on the in-domain units of the shipped
    # ensemble, leave-one-dataset-out; the incumbent is one view. The fold rules are chosen
    # again under each view set (their validation images see the same views). The cross pairs
    # are scored with the views only when they are chosen (the matrix shows what ships).
    for tta in VIEW_SETS[1:]:
        passes[tta] = final_pass(tta, "in-domain")
        evs[tta] = fold_into(joined(passes[tta][0]), use_fold)
    tta_rows = {}
    for tta, e in evs.items():
        p = e.per_image
        p = p[(p["method"] == ENSEMBLE) & (p["trained_on"] == p["dataset"])]
        tta_rows[tta] = p.groupby("dataset", sort=False)["iou"].mean()
    tta_scores = pd.DataFrame(tta_rows).T.reindex(columns=names)
    tta_choice = choose(tta_scores, VIEW_SETS[0])
    results["tta"] = {**_choice_record(tta_choice, leave_one_out(tta_scores, VIEW_SETS[0])),
                      "no_harm_rule": _choice_record(
                          choose(tta_scores, VIEW_SETS[0], criterion="no-harm"),
                          leave_one_out(tta_scores, VIEW_SETS[0], criterion="no-harm")),
                      "views": {k: list(VIEWS[k]) for k in VIEW_SETS},
                      "in_domain_seconds": {k: round(v[4], 1) for k, v in passes.items()}}
    results["tta"]["in_domain_seconds"][VIEW_SETS[0]] = None  # that pass held every pair
    chosen_tta = tta_choice.chosen
    if chosen_tta != VIEW_SETS[0] and len(data) > 1:  # the cross pairs under the chosen views
        inside, cross = passes[chosen_tta], final_pass(chosen_tta, "cross")
        passes[chosen_tta] = ({**inside[0], **cross[0]}, {**inside[1], **cross[1]}, inside[2],
                              {**inside[3], **cross[3]}, inside[4] + cross[4])
        evs[chosen_tta] = fold_into(joined(passes[chosen_tta][0]), use_fold)
    print("\ntest-time mirroring (in-domain mean IoU of the ensemble)\n", tta_scores.round(4),
          "\n", tta_choice.reason)
    ev = evs[chosen_tta]
    _, preds, fold_rules, sources, _ = passes[chosen_tta]
    for run in runs.values():
        run.tta = chosen_tta  # the gallery below segments as the defaults do
    if chosen_tta != VIEW_SETS[0]:
        # the fold rules under the chosen views are the shipped ones; whether to use fold rules
        # at all was decided with one view and carries over (its table stays that pass's)
        results["fold_fusion"]["runs"] = {t: (r.to_dict() if r is not None else None)
                                          for t, r in fold_rules.items()}
        results["fold_fusion"]["runs_views"] = chosen_tta
    # the set gate (a whole image set keeps its handcrafted masks): scored on this pass, whose
    # ensemble has none, by the no-harm rule over every unit, leave-one-dataset-out
    gates = gate_candidates(final)
    gate = gate_scores(ev, gates)
    gate_choice = choose(gate, "0", criterion="no-harm")
    results["set_gate"] = _choice_record(
        gate_choice, leave_one_out(gate, "0", _all_units(names), names, criterion="no-harm"))
    entropies = set_entropies(ev)
    results["set_entropies"] = [{"unit": t if t == d else f"{t} -> {d}", "median_entropy": v}
                                for (t, d), v in entropies.items()]
    print("\nset gate (the set's median U-Net entropy above)\n", gate.round(4), "\n",
          gate_choice.reason, "\n", entropies.round(3))
    final = gates[gate_choice.chosen]
    ev = apply_set_gate(ev, final)
    label = final.label() + (PER_FOLD_LABEL if use_fold else "")
    for d in ev.info:
        ev.info[d]["ensemble"] = label
    results["defaults"] = {"handcrafted": hm_params.to_dict(), "ensemble": final.to_dict(),
                           "ensemble_label": label, "fold_fusion": use_fold,
                           "tta": chosen_tta}
    library = {"handcrafted": HandcraftedParams().to_dict(), "ensemble": EnsembleParams().to_dict(),
               "fold_fusion": FOLD_FUSION, "tta": TTA}
    results["library_defaults_match"] = library == {k: results["defaults"][k]
                                                    for k in ("handcrafted", "ensemble",
                                                              "fold_fusion", "tta")}
    save_report(ev, out / "report", n_boot=args.n_boot, seed=args.seed)
    for name, ds in data.items():
        pred = preds[name, name]
        shown = standard_methods(pred, final, handcrafted=_hm, fold_fusion=False)
        if use_fold:
            shown.rules[ENSEMBLE] = FoldFusionRule(pred, final, _hm)
        fig = failure_gallery(ev, ds, shown)
        fig.savefig(out / "report" / f"failure_gallery_{name}.png", dpi=110)
    # the U-Nets' out-of-fold numbers from this evaluation (one inference rule for every table)
    own = ev.per_image[(ev.per_image["method"] == "DEEP")
                       & (ev.per_image["trained_on"] == ev.per_image["dataset"])]
    for d, g in own.groupby("dataset"):
        results["unet_runs"][d].update(oof_iou=float(g["iou"].mean()),
                                       oof_iou_std=float(g["iou"].std()),
                                       oof_from="this report's evaluation")
    summary = ev.summary().reset_index()
    results["summary"] = summary.to_dict(orient="records")
    results["overall_iou"] = overall_table(ev).reset_index().to_dict(orient="records")
    results["paper_tables"] = {d: paper_table(ev, d).to_dict(orient="records") for d in names}
    results["intervals"] = iou_intervals(ev, n_boot=args.n_boot, seed=args.seed).to_dict(
        orient="records")
    results["paired"] = paired_table(ev, n_boot=args.n_boot, seed=args.seed).to_dict(
        orient="records")
    results["generalization"] = {m: matrix(ev, m).reset_index().to_dict(orient="records")
                                 for m in ("DEEP", "ENSEMBLE")}
    # the chosen rule, and each measure it uses alone at every threshold tried
    used = [m for m, on in (("iou<", final.fallback_iou), ("entropy>", final.fallback_entropy))
            if on] or ["iou<", "entropy>"]
    shown = {k: v for k, v in fb_rules.items()
             if k == fb_choice.chosen or (" or " not in k and k.startswith(tuple(used)))}
    results["fallback_rates"] = fallback_rates(ev, shown).reset_index(
        names="unit").to_dict(orient="records")
    results["scale"] = {d: {"scale": r.record["config"].get("scale"),
                            "median_nucleus_diameter":
                                r.record["dataset"].get("median_nucleus_diameter"),
                            "fold_scales": [f.get("scale") for f in r.record["folds"]]}
                        for d, r in runs.items()}
    results["scale_sources"] = sources
    results["mask_repairs"] = {d: {k: ev.info[d][k] for k in ("mask_repaired_images",
                                                            "mask_repaired_pixels")}
                               for d in names if d in ev.info}
    # the numbers of the square resize stay beside the new ones (chapter 4's "before")
    if reference.available("segmentation"):
        shipped = reference.load("segmentation")
        prev = shipped["results"]
        if "scale" not in prev:
            results["before_scale"] = {
                "provenance": shipped["provenance"],
                "what": "U-Nets that resized every image to one square, before the nucleus scale",
                **{k: prev[k] for k in ("generalization", "overall_iou", "unet_runs") if k in prev}}
        elif "before_scale" in prev:
            results["before_scale"] = prev["before_scale"]
        if "before_budget" in prev:
            results["before_budget"] = prev["before_budget"]
        elif _before_budget(prev, results["unet_runs"], prof.segmentation.epochs):
            # the runs at the nucleus scale, before the cpu profile's budget rule set the epochs
            results["before_budget"] = {
                "provenance": shipped["provenance"],
                "what": f"U-Nets at the nucleus scale trained for the profile's "
                        f"{prof.segmentation.epochs} epochs, before the budget rule set each "
                        f"dataset's epochs",
                **{k: prev[k] for k in ("generalization", "overall_iou", "unet_runs", "summary")
                   if k in prev}}
    results["seconds"] = time.perf_counter() - t_start
    print("\n", overall_table(ev).round(4))
    print("\n", matrix(ev, "ENSEMBLE").round(4))
    if not args.no_reference:
        cmd = "python benchmarks/segmentation_report.py " + " ".join(
            a if not a.startswith("/") else Path(a).name for a in (argv or sys.argv[1:]))
        path = reference.write("segmentation", results, cmd, prof.name)
        print(f"\nwrote {path}")
    if not results["library_defaults_match"]:
        print("\nWARNING: the library's defaults differ from the chosen ones:",
              results["defaults"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
