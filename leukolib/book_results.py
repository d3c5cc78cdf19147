"""The front page's "results at a glance", rendered from the shipped reference results.

A book helper (like :mod:`leukolib.book`): the core never imports it.
:func:`leukolib.book.stage_book` calls :func:`write_glance`, which writes a
markdown fragment (``book/results_at_a_glance.md``, included by the front
page) and its figure from :mod:`leukolib.reference`, so the front page shows
what the benchmarks measured on real data, never a typed number. Each column
says whether its data took part in choosing the defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["classification_glance", "segmentation_glance", "write_glance"]

DATASET_NAMES = {"jtsc": "JTSC", "all_idb2": "ALL-IDB2", "bloodseg": "SMC_IDB"}


def _held_out(parameter: str) -> pd.Series:
    from leukolib.segmentation import reference as seg

    rows = seg.held_out(parameter).reset_index()
    rows = rows[rows["held out"] == rows["unit"]]
    return rows.set_index("held out")["IoU, chosen without it"]


def segmentation_glance() -> pd.DataFrame | None:
    """Mean nucleus IoU per shared dataset: ours (default and held out) beside the paper.

    Returns
    -------
    DataFrame or None
        One row per dataset; ``None`` when no segmentation results are shipped.
    """
    from leukolib.segmentation import reference as seg

    if not seg.available():
        return None
    s = seg.summary()
    paper = seg.overall()
    paper_row = next((r for r in paper.index if str(r).startswith("paper")), None)
    hm_out, ens_out = _held_out("handcrafted"), _held_out("fusion_in_domain")
    rows = {}
    for d in s.columns:
        rows[DATASET_NAMES.get(d, d)] = {
            "HM": s.at["HM", d],
            "HM, chosen without it": hm_out.get(d, np.nan),
            "DEEP (out-of-fold)": s.at["DEEP", d],
            "ENSEMBLE (out-of-fold)": s.at["ENSEMBLE", d],
            "ENSEMBLE, rule chosen without it": ens_out.get(d, np.nan),
            "paper ENSEMBLE (Table 2)": paper.at[paper_row, d] if paper_row else np.nan,
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "dataset"
    return frame


def _generalization() -> pd.DataFrame:
    from leukolib.segmentation import reference as seg

    g = seg.generalization("ENSEMBLE")
    g = g.rename(index=lambda r: DATASET_NAMES.get(r, r), columns=lambda c: DATASET_NAMES.get(c, c))
    g.index.name = "ENSEMBLE: U-Net trained on"
    return g


def classification_glance() -> pd.DataFrame | None:
    """Per dataset with a shipped classification result: best model and the two baselines.

    The best model is the one with the best mean validation accuracy (never
    chosen on the test split); its test accuracy has a bootstrap 95 % interval.
    """
    from leukolib.classification.report import committed

    rows = {}
    for d in DATASET_NAMES:
        r = committed(f"classification_{d}_cpu.json")
        if not r or not (r.get("grid") or {}).get("table"):
            continue
        t = pd.DataFrame(r["grid"]["table"]).set_index("model")
        best = t["val acc (mean)"].idxmax()
        base = r.get("baselines") or {}
        cfg = r["grid"].get("config") or {}
        rows[DATASET_NAMES[d]] = {
            # one column for the accuracy and its interval: the table fits the page's width
            "best model (by validation)": best,
            "test accuracy [95 % CI]": f"{t.at[best, 'test acc']:.3f} "
                                       f"[{t.at[best, 'CI low']:.3f}, {t.at[best, 'CI high']:.3f}]",
            "colour only": (base.get("color") or {}).get("test_acc", np.nan),
            "nucleus features": (base.get("handcrafted") or {}).get("test_acc", np.nan),
            "test images": r["grid"].get("n_test"),
            "network": f"{cfg.get('arch')}, {cfg.get('image_size')} px, "
                       f"{cfg.get('folds')} folds x {cfg.get('epochs')} epochs, "
                       f"{cfg.get('weights')} init",
        }
    if not rows:
        return None
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "dataset"
    return frame


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    shown = frame.reset_index()
    head = "| " + " | ".join(map(str, shown.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in shown.columns) + " |"
    lines = [head, sep]
    for _, row in shown.iterrows():
        cells = [("—" if pd.isna(v) else f"{v:.{digits}f}") if isinstance(v, float) else str(v)
                 for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figure(seg: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = ["HM", "DEEP (out-of-fold)", "ENSEMBLE (out-of-fold)"]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    x = np.arange(len(seg))
    width = 0.26
    for i, c in enumerate(cols):
        ax.bar(x + (i - 1) * width, seg[c], width, label=c.split(" ")[0])
    ax.scatter(x + width, seg["paper ENSEMBLE (Table 2)"], marker="_", s=600, color="black",
               zorder=3, label="paper's ensemble")
    ax.set_xticks(x, seg.index)
    low = float(np.nanmin(seg[cols + ["paper ENSEMBLE (Table 2)"]].to_numpy()))
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_ylabel("mean nucleus IoU", fontsize=11)
    ax.tick_params(labelsize=11)
    ax.legend(ncol=4, fontsize=11, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_glance(folder: str | Path) -> Path:
    """Write ``results_at_a_glance.md`` (and its figure under ``images/``) into ``folder``.

    Parameters
    ----------
    folder : path
        The staged ``book/`` folder.

    Returns
    -------
    Path
        The markdown file; it says so when no reference results are shipped.
    """
    from leukolib import reference

    folder = Path(folder)
    seg, cls = segmentation_glance(), classification_glance()
    parts = []
    if seg is not None:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        _figure(seg, folder / "images" / "results_at_a_glance.svg")
        parts += [
            "### Nucleus segmentation",
            "Mean IoU of the nucleus masks on the three shared datasets, under the `cpu` "
            "profile (the U-Net of each dataset trained by 5-fold cross-validation on it, each "
            "image segmented by the fold that did not see it). The defaults (the handcrafted "
            "dilation, the fusion rule, the threshold and the area opening) were chosen on the "
            "three datasets by the rule of chapter 4. The columns *chosen without it* are the "
            "numbers of data that chose nothing: the choice made on the other two datasets, "
            "scored on this one (leave-one-dataset-out).",
            "",
            _markdown(seg),
            "",
            "```{figure} images/results_at_a_glance.svg",
            ":name: fig-glance",
            ":width: 90%",
            ":alt: Bar chart of the mean nucleus IoU of HM, DEEP and ENSEMBLE on JTSC, ALL-IDB2 "
            "and SMC_IDB, with the paper's ensemble as a black mark.",
            "",
            "Mean nucleus IoU per dataset and method; the black mark is the paper's ensemble "
            "(its Table 2).",
            "```",
            "",
            "The ensemble with a U-Net trained on one dataset (rows) and applied to another "
            "(columns), beside the handcrafted method, which needs no training: how far a "
            "network trained on one kind of image carries to another.",
            "",
            _markdown(_generalization()),
            "",
            f"Source: {reference.provenance('segmentation')}.",
            "",
        ]
    if cls is not None:
        parts += [
            "### Classification",
            "The eight classifiers of chapter 5 under the `cpu` profile (the last column says "
            "which network and which initial weights), beside two baselines trained on the "
            "same split: a random forest on a colour histogram of the whole image (colour "
            "only) and one on the nucleus's shape, colour and texture (nucleus features). "
            "The best model was chosen on validation accuracy; the test split chose nothing.",
            "",
            _markdown(cls),
            "",
        ]
    if not parts:
        parts = ["No reference results are shipped with this copy of leukolib: run the "
                 "scripts of `benchmarks/` (see the README)."]
    path = folder / "results_at_a_glance.md"
    path.write_text("\n".join(parts) + "\n")
    return path
