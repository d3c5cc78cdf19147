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
from typing import Any

import numpy as np
import pandas as pd

from leukolib.classification.best import best_model
from leukolib.data.datasets import display_name

__all__ = [
    "classification_glance",
    "gpu_check_tables",
    "segmentation_glance",
    "write_glance",
    "write_gpu_check",
]

DATASET_NAMES = {d: display_name(d) for d in ("jtsc", "all_idb2", "bloodseg")}


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


def _generalization(before: bool = False) -> pd.DataFrame | None:
    from leukolib.segmentation import reference as seg

    g = seg.generalization_before("ENSEMBLE") if before else seg.generalization("ENSEMBLE")
    if g is None:
        return None
    g = g.rename(index=lambda r: DATASET_NAMES.get(r, r), columns=lambda c: DATASET_NAMES.get(c, c))
    g.index.name = "ENSEMBLE: U-Net trained on"
    return g


def _unet_scale_sentence() -> str:
    """How the shipped report's U-Nets saw their images, in words."""
    from leukolib.segmentation import reference as seg
    from leukolib.segmentation.scale import ScaleSpec

    scales = seg.results().get("scale") or {}
    specs = {d: (v or {}).get("scale") for d, v in scales.items()}
    if not specs or not all(specs.values()):
        size = seg.results().get("unet_runs", {}).get("jtsc", {}).get("image_size", 128)
        return (f"These U-Nets resized every image to {size} x {size} px (the paper's way, "
                "before the nucleus scale of chapter 3).")
    spec = ScaleSpec(**{**next(iter(specs.values())),
                        "zoom": tuple(next(iter(specs.values()))["zoom"])})
    return f"These U-Nets work at the nucleus scale: {spec.label()} (chapter 3)."


def classification_glance() -> pd.DataFrame | None:
    """Per dataset with a shipped classification result: best model and the two baselines.

    The best model is the one with the best mean validation accuracy (never
    chosen on the test split); its test accuracy has its exact (Clopper-Pearson)
    95 % interval, as shipped (``benchmarks/reanalyse_intervals.py`` recomputes
    a shipped interval from its counts).
    """
    from leukolib.classification.report import committed
    from leukolib.tables import format_interval

    rows = {}
    for d in DATASET_NAMES:
        r = committed(f"classification_{d}_cpu.json")
        if not r or not (r.get("grid") or {}).get("table"):
            continue
        t = pd.DataFrame(r["grid"]["table"]).set_index("model")
        best = best_model(t["val acc (mean)"].to_dict())
        base = r.get("baselines") or {}
        cfg = r["grid"].get("config") or {}
        rows[DATASET_NAMES[d]] = {
            # one column for the accuracy and its interval: the table fits the page's width
            "best model (by validation)": best,
            "test accuracy [95 % CI]": format_interval(t.at[best, "test acc"], t.at[best, "CI low"],
                                                       t.at[best, "CI high"], 3),
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


def _claims_glance() -> list[str]:
    """The paper's claims and our verdicts on real data: the front page's first table."""
    from leukolib import findings

    table = findings.verdict_summary()
    if not len(table):
        return []
    return [
        "### The paper's claims, and what our real data say",
        "Each claim of the paper, our verdict and its reason, from the committed real-data "
        "results under the `cpu` profile ({doc}`chapter 8 <../notebooks/08_claims>` gives each "
        "claim's evidence, with its numbers, intervals and tests, and what would change it).",
        "",
        _markdown(table),
        "",
    ]


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
    from leukolib.segmentation import reference as seg_ref

    folder = Path(folder)
    seg, cls = segmentation_glance(), classification_glance()
    parts = []
    if seg is not None:
        gate = seg_ref.gate_sentence()
        (folder / "images").mkdir(parents=True, exist_ok=True)
        _figure(seg, folder / "images" / "results_at_a_glance.svg")
        parts += [
            "### Nucleus segmentation",
            "Mean IoU of the nucleus masks on the three shared datasets, under the `cpu` "
            "profile (the U-Net of each dataset trained by 5-fold cross-validation on it, each "
            "image segmented by the fold that did not see it). The defaults (the handcrafted "
            "dilation, the fusion rule, the threshold and the area opening) were chosen on the "
            "three datasets by the selection rule of chapter 2 (applied in chapter 4). The "
            "columns *chosen without it* are the "
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
            _unet_scale_sentence() + ("" if gate is None else
                                      f" {gate.removesuffix('.')} (chapter 4)."),
            "",
        ]
        before = _generalization(before=True)
        if before is not None:
            parts += ["The same matrix with the U-Nets of the report this one replaced, which "
                      "resized every image to one square:", "", _markdown(before), ""]
        parts += [f"Source: {reference.provenance('segmentation')}.", ""]
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
        note = reference.split_note(*(f"classification_{d}_cpu.json" for d in DATASET_NAMES))
        if note:
            parts += ["```{warning}", note, "```", ""]
    verdicts = _claims_glance()
    if verdicts:
        parts = verdicts + parts
    if not parts:
        parts = ["No reference results are shipped with this copy of leukolib: run the "
                 "scripts of `benchmarks/` (see the README)."]
    path = folder / "results_at_a_glance.md"
    path.write_text("\n".join(parts) + "\n")
    return path


#: The training-step variants of ``benchmarks/gpu_step.py``, in words.
_STEP_NAMES = {
    "eager-fp16-nhwc": "kernels launched one by one, float16, channels-last",
    "eager-fp16-nchw": "kernels launched one by one, float16, channels-first",
    "eager-bf16-nhwc": "kernels launched one by one, bfloat16, channels-last",
    "graph-bf16-nhwc": "the whole step replayed from a CUDA graph, bfloat16, channels-last",
    "compile-fp16-nhwc": "torch.compile (default mode), float16, channels-last",
}


def _rate(x: float) -> str:
    """A learning rate or decay as ``1e-5`` (Python's ``g`` writes ``1e-05``)."""
    return f"{x:.0e}".replace("e-0", "e-") if x < 0.01 else f"{x:g}"


def _gpu_speed_rows(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows = {}
    for stage, label in (("unet", "U-Net"), ("resnet50", "ResNet-50")):
        s = r[stage]
        name = DATASET_NAMES.get(s["dataset"], s["dataset"])
        rows[f"{label}, {s['image_size']} px ({name}, batch {s['batch_size']})"] = {
            "training step": s.get("training_step", "eager, float16 with a gradient scaler"),
            "training images/s": f"{s['train_images_per_second']:.0f}",
            "epoch (s)": f"{s['mean_epoch_seconds']:.2f}",
            "waiting for the DataLoader (% of training)": f"{100 * s['dataloader_share']:.1f}",
            "GPU memory peak (GiB)": f"{s['gpu_memory_peak_gib']:.2f}",
            "inference images/s": (f"{s['inference_images_per_second']:.0f}"
                                   if "inference_images_per_second" in s else "—"),
        }
    return rows


def gpu_check_tables() -> dict[str, pd.DataFrame] | None:
    """The shipped GPU measurements as tables (``None`` where none are shipped).

    Returns
    -------
    dict of DataFrame
        ``"speed"``: the check of ``benchmarks/gpu_check.py`` (one fold of each
        network under the ``paper`` profile), with the same check run with
        eager training steps below it; ``"steps"``: the training-step variants
        of ``benchmarks/gpu_step.py``; ``"estimate"``: the time of the paper's
        whole protocol on one dataset, extrapolated from the measured epochs.
    """
    from leukolib import reference
    from leukolib.profiles import get_profile

    if not reference.available("gpu_check"):
        return None
    r = reference.load("gpu_check")["results"]
    speed = pd.DataFrame.from_dict(_gpu_speed_rows(r), orient="index")
    eager = r.get("eager_steps", {}).get("resnet50")
    if eager:
        row = _gpu_speed_rows({"unet": r["unet"], "resnet50": eager})
        key = next(k for k in row if k.startswith("ResNet"))
        speed.loc[key + ", eager steps"] = row[key]
    speed.index.name = "network (dataset, batch)"
    steps = pd.DataFrame(r["step_variants"]["rows"]).set_index("variant")
    steps = steps[["images_per_second", "ms_per_step"]].round(1)
    steps.columns = ["images/s", "ms per step"]
    steps.index = [_STEP_NAMES.get(v, v) for v in steps.index]
    steps.index.name = f"ResNet-50 step, batch {r['step_variants']['batch']}, no DataLoader"
    paper = get_profile("paper")
    rows = {}
    for key, c, models in (("unet", paper.segmentation, 1),
                           ("resnet50", paper.classification, 8)):
        s = r[key]
        stage = (f"{'eight ResNet-50s' if models > 1 else 'the U-Net'}, {c.folds} folds x "
                 f"{c.epochs} epochs")
        # a fold's epoch time (validation included) times the folds, epochs and models
        minutes = (models * c.folds * c.epochs * s["mean_epoch_seconds"]
                   + s["first_epoch_seconds"]) / 60
        name = DATASET_NAMES.get(s["dataset"], s["dataset"])
        rows[stage] = {"measured on": f"{name} ({s['images']} images)",
                       "seconds per epoch": f"{s['mean_epoch_seconds']:.2f}",
                       "estimated minutes": f"{minutes:.0f}"}
    estimate = pd.DataFrame.from_dict(rows, orient="index")
    estimate.index.name = "the paper's protocol"
    return {"speed": speed, "steps": steps, "estimate": estimate}


def paper_profile_table() -> pd.DataFrame:
    """What the ``paper`` profile runs, stage by stage, read from :mod:`leukolib.profiles`."""
    from leukolib.profiles import get_profile

    p = get_profile("paper")
    s, c, e, r = p.segmentation, p.classification, p.explanation, p.robustness
    rows = {
        "U-Net (chapter 3)": (f"every image resized to {s.image_size} px" if s.scale == "square"
                              else f"nucleus scale, {s.image_size} px patches")
        + f", {s.folds} folds x {s.epochs} epochs, "
        f"batch {s.batch_size}, "
        + ("the paper's Table A2 hyper-parameters" if s.hparams == "paper"
           else "leukolib's default hyper-parameters"),
        "classifiers (chapter 5)": f"{c.summary()}; resize {c.resize} then centre crop; Adam at "
        f"{_rate(c.lr)} (weight decay {_rate(c.weight_decay)}) from ImageNet weights"
        + (" (required)" if c.pretrained else "") + f"; a {c.test_fraction:.0%} test split; "
        + ("segmented models see the ensemble's mask, its U-Net trained on the training-"
           "validation images only" if c.segmenter == "ensemble"
           else "segmented models see the handcrafted mask"),
        "explanations (chapter 6)": ("every test image" if e.max_images is None
                                     else f"{e.max_images} test images")
        + f", {e.n_boot:,} bootstrap resamples",
        "robustness (chapter 7)": f"{r.severities} severities, "
        + ("all eight models swept" if r.models == "all" else "the best segmented and raw models"),
        "on a GPU": f"up to {p.num_workers} DataLoader workers (one core left to the training "
        "loop), a checkpoint of a "
        f"fold in progress at most every {p.checkpoint_minutes:g} minutes, cuDNN mode "
        f"`{p.cuda_mode}`, " + ("classifier steps replayed from CUDA graphs (bfloat16)"
                                if p.cuda_graphs else "eager classifier steps"),
    }
    frame = pd.DataFrame({"the paper profile": rows})
    frame.index.name = "stage"
    return frame


def write_gpu_check(folder: str | Path) -> Path:
    """Write ``gpu_check.md`` (the GPU measurements) and ``paper_profile.md`` into ``folder``.

    ``folder`` is the staged ``book/`` folder; the page "Run the paper's
    protocol" includes both.
    """
    from leukolib import reference

    (Path(folder) / "paper_profile.md").write_text(_markdown(paper_profile_table()) + "\n")
    path = Path(folder) / "gpu_check.md"
    tables = gpu_check_tables()
    if tables is None:
        path.write_text("No GPU measurements are shipped with this copy of leukolib "
                        "(`benchmarks/gpu_check.py` writes them).\n")
        return path
    r = reference.load("gpu_check")["results"]
    env, res = r["environment"], r["resnet50"]
    p = reference.load("gpu_check")["provenance"]
    speed = tables["speed"]
    parts = [
        f"Measured on one {env['gpu']} (CUDA {env['cuda']}, PyTorch {env['torch']}, "
        f"{env['dataloader_workers']} DataLoader workers on {env['cpu_count']} CPU cores, "
        f"cuDNN mode `{env['cuda_mode']}`) with `{p['command']}` on {p['date']} "
        f"(commit {p['commit']}). ResNet-50 started from {res['weights_note']}.",
        "",
        _markdown(speed),
        "",
        "The first epoch is left out of the rates: it pays once for cuDNN's choice of "
        f"kernels, the workers' start and the graph's capture ({res['first_epoch_seconds']:.0f} s "
        "for ResNet-50). *Waiting for the DataLoader* is the share of the training time the "
        "loop spent waiting for the next augmented batch: where it is large, the CPU's "
        "augmentation, not the GPU, sets the pace.",
        "",
        "The training step of ResNet-50 alone, on random batches already on the GPU:",
        "",
        _markdown(tables["steps"], digits=1),
        "",
        "The whole protocol on one dataset of that size, extrapolated from the measured "
        "epochs (an estimate: the mean epoch of one fold, validation included, times the "
        "protocol's folds, epochs and models, plus one first epoch); chapters 6 and 7 were "
        "not measured on a GPU:",
        "",
        _markdown(tables["estimate"]),
    ]
    path.write_text("\n".join(parts) + "\n")
    return path
