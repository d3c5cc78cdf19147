"""Chapter 6's figure of real cells: Grad-CAM maps of JTSC test cells from the committed runs.

Usage::

    python benchmarks/explain_figures.py --runs RUNS --cache OUT [--shared ../shared/data]

On the JTSC classifier runs of ``benchmarks/classification_report.py``
(``RUNS/classifiers_jtsc_cpu_seed0``) and the per-model cache of
``benchmarks/explain_report.py`` (``OUT/jtsc``: nothing is explained again when
it is there), draws the Grad-CAM maps of a few test cells (one per class in
turn, the chapter's seeded choice) for the best segmented and the best raw
model by validation accuracy, and writes the figure with each cell's share of
the map's energy on the nucleus to ``leukolib/reference/figures/`` (package
data: chapter 6 shows it, in Colab too).

Only JTSC is drawn: its images are published under the GPL-3.0 licence, which
the figure's record names. ALL-IDB2 may not be redistributed, so no figure of
its cells is ever written here.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

#: The only dataset whose cells may be shown in a committed figure, and its licence.
LICENCE = {"jtsc": "JTSC (Zheng et al. 2018), GPL-3.0: https://github.com/zxaoyou/segmentation_WBC"}
METHOD = "gradcam"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True, help="explain_report.py's --out")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=4, help="cells shown")
    ap.add_argument("--out", type=Path, default=ROOT / "leukolib" / "reference" / "figures")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    from explain_report import find_runs

    from leukolib.explain import best_by_validation, explain_runs
    from leukolib.reference import source_commit

    name = "jtsc"
    ns = argparse.Namespace(shared=args.shared, profile="cpu", seed=0, runs=args.runs,
                            train=False, device="cpu", models="", epochs=None, folds=None)
    ds, runs, note = find_runs(name, ns)
    if len(runs) < 2:
        print(f"{name}: {note}")
        return 1
    detail = best_by_validation(runs)
    rep = explain_runs(runs, ds, "all", "cpu", 0, faithfulness=detail, cascade=detail,
                       cache=args.cache / name, progress=False)
    ids = rep.shown_ids(args.n)
    fig = rep.figure_models(METHOD, args.n, keys=detail)
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / f"explain_{name}_cells.png"
    fig.savefig(png, dpi=110)
    loc = rep.localization
    shares = {}
    for key in detail:
        rows = loc[(loc["model"] == key) & (loc["method"] == METHOD)].set_index("id")
        shares[key] = {i: float(rows.loc[i, "energy_nucleus"]) for i in ids}
    area = loc[(loc["model"] == detail[0]) & (loc["method"] == METHOD)].set_index("id")
    record = {
        "provenance": {"command": "python benchmarks/explain_figures.py "
                                  + shlex.join(["--runs", "RUNS", "--cache", "OUT", "--n",
                                                str(args.n)]),
                       "date": datetime.now(UTC).date().isoformat(), "commit": source_commit(),
                       "runs": note},
        "dataset": name, "licence": LICENCE[name], "method": METHOD, "models": detail,
        "ids": ids, "labels": {i: rep.class_names[int(rep.models[detail[0]].labels[
            rep.models[detail[0]].ids.index(i)])] for i in ids},
        "energy_nucleus": shares,
        "area_nucleus": {i: float(area.loc[i, "area_nucleus"]) for i in ids},
        "figure": png.name,
    }
    (args.out / f"explain_{name}_cells.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {png.name} in {args.out.name}/ ({', '.join(detail)}; cells {', '.join(ids)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
