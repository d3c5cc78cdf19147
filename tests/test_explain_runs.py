"""Explanations of real classifier runs (two of the grid, trained at smoke size) and the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from leukolib.cli import main
from leukolib.data import Subset, profile_dataset

KEYS = ["segmented-relu-linear", "raw-relu-linear"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    from leukolib.classification import load_classifier_run, train_grid

    ds = profile_dataset("synthetic", None, "smoke", 0, stage="classification")
    out = tmp_path_factory.mktemp("classifiers")
    train_grid(ds, out, profile="smoke", seed=0, keys=KEYS, progress=False)
    return ds, out, {k: load_classifier_run(out / k, device="cpu") for k in KEYS}


@pytest.fixture(scope="module")
def report(grid, tmp_path_factory):
    from leukolib.explain import explain_runs

    ds, _, runs = grid
    cache = tmp_path_factory.mktemp("explain_cache")
    return explain_runs(runs, ds, ("gradcam", "gradcam++"), profile="smoke", seed=0,
                        faithfulness=[KEYS[0]], cascade=[KEYS[1]], cache=cache,
                        progress=False), cache


def test_every_model_is_explained_on_its_own_test_split(grid, report):
    ds, _, runs = grid
    rep, _ = report
    test_ids = [str(i) for i in runs[KEYS[0]].saved_logits()["test_ids"]]
    assert rep.test_ids == test_ids and list(rep.models) == KEYS
    for key, m in rep.models.items():
        assert set(m.ids) <= set(test_ids) and len(m.ids) == min(4, len(test_ids))
        assert m.fold == runs[key].best_fold and m.meta["mask_source"] == "ground truth"
        size = runs[key].spec.image_size
        assert m.images.shape[1:] == (size, size, 3) and m.nucleus.shape[1:] == (size, size)
        assert m.cell is not None and (m.cell | ~m.nucleus).all()  # nucleus inside the cell
        assert set(m.localization["method"]) == {"gradcam", "gradcam++"}
    assert rep.models[KEYS[1]].faithfulness is None  # only where asked: ROAD costs the most
    assert set(rep.faithfulness["model"]) == {KEYS[0]}
    assert rep.models[KEYS[1]].sanity["randomized"].nunique() == 6  # the cascade
    assert set(rep.sanity_summary()["model"]) == set(KEYS)


def test_the_explained_logits_are_the_runs(grid, report):
    _, _, runs = grid
    rep, _ = report
    for key, m in rep.models.items():
        saved = runs[key].saved_logits()
        pos = [[str(i) for i in saved["test_ids"]].index(i) for i in m.ids]
        np.testing.assert_allclose(m.logits, saved["test_logits"][m.fold][pos], atol=1e-4)


def test_tables_and_numbers(report):
    rep, _ = report
    s = rep.localization_summary()
    assert {"energy_nucleus", "pointing_nucleus", "area_nucleus", "grid_nucleus"} <= set(
        s["metric"])
    cmp = rep.input_comparison()
    # one test per distinct map (a map two methods share is one test), Holm-adjusted together
    assert set(cmp["architecture"]) == {"relu-linear"}
    assert list(cmp["method"]) == rep.distinct_methods()
    assert "wilcoxon_p_holm" in cmp and "Holm-adjusted" in cmp.attrs["note"]
    cal = rep.calibration_table()
    assert list(cal.index) == KEYS and (cal["temperature"] > 0).all()
    assert ((cal["ece_after_p"] > 0) & (cal["ece_after_p"] <= 1)).all()
    assert (cal["ece_before_p_holm"] >= cal["ece_before_p"]).all()
    assert {"floor before", "p before", "floor after", "p after",
            "chance of halving"} <= set(rep.calibration_view().columns)
    head = rep.headline()
    assert 0 <= head["n_miscalibrated_before"] <= head["n_calibrated"] == len(KEYS)
    assert 0 <= head["halving_chance_median"] <= head["halving_chance_max"] <= 1
    a3 = rep.probability_table(per_class=1)
    assert a3.iloc[-1]["class"] == "Average" and set(KEYS) <= set(a3.columns)
    numbers = rep.numbers()
    assert {"localization", "faithfulness", "sanity", "calibration",
            "recommendation"} <= set(numbers)


def test_a_cached_model_is_reused_and_a_changed_setting_recomputes(grid, report):
    from leukolib.explain import ModelExplanation, explain_run

    ds, _, runs = grid
    rep, cache = report
    run = runs[KEYS[0]]
    stamp = (cache / KEYS[0] / "meta.json").stat().st_mtime_ns
    again = explain_run(run, ds, ("gradcam", "gradcam++"), profile="smoke", seed=0,
                        cache=cache / KEYS[0])
    assert (cache / KEYS[0] / "meta.json").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.cams["gradcam++"], ModelExplanation.load(
        cache / KEYS[0]).cams["gradcam++"])
    other = explain_run(run, ds, "gradcam", profile="smoke", seed=0, faithfulness=False,
                        sanity=False, cache=cache / KEYS[0])
    assert list(other.cams) == ["gradcam"] and other.sanity is None
    fresh = explain_run(run, ds, ("gradcam", "gradcam++"), profile="smoke", seed=0)
    for name in ("localization", "faithfulness", "sanity"):  # the same seed, the same numbers
        pd.testing.assert_frame_equal(getattr(fresh, name), getattr(rep.models[KEYS[0]], name))


def test_another_dataset_is_refused(grid):
    from leukolib.explain import explain_run

    ds, _, runs = grid
    with pytest.raises(ValueError, match="not in the dataset"):
        explain_run(runs[KEYS[1]], Subset(ds, [0]), profile="smoke")
    other = profile_dataset("synthetic", None, "smoke", 1, stage="classification")
    with pytest.raises(ValueError, match="other pixels"):
        explain_run(runs[KEYS[1]], other, profile="smoke")


@pytest.fixture
def images(tmp_path, grid):
    ds, _, _ = grid
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.bmp", "c.tif")):
        Image.fromarray(ds[i].image).save(folder / name)
    (folder / "x.png").write_bytes(b"not an image")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("key", KEYS)
def test_cli_explains_a_folder_past_a_bad_file(grid, images, tmp_path, capsys, key):
    _, out_dir, _ = grid
    before = _snapshot(images)
    out = tmp_path / "out"
    status = main(["explain", str(images), "--model", str(out_dir / key), "--out", str(out),
                   "--cam", "all", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "x.png" in err and "1 input(s) failed" in err
    assert _snapshot(images) == before  # inputs untouched
    pages = sorted(p.name for p in out.glob("*_explain.png"))
    assert pages == ["a_explain.png", "b_explain.png", "c_explain.png"]
    with open(out / "explanations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["file"]).name for r in rows] == ["a.png", "b.bmp", "c.tif"]
    assert {"predicted", "p_L1", "share_gradcam", "pointing_hirescam", "page"} <= set(rows[0])
    assert rows[0]["nucleus_mask"] == "handcrafted"
    assert np.asarray(Image.open(out / "a_explain.png")).shape[2] == 3


def test_cli_refuses_existing_outputs_and_bad_arguments(grid, images, tmp_path, capsys):
    _, out_dir, _ = grid
    run = str(out_dir / KEYS[1])
    out = tmp_path / "out"
    assert main(["explain", str(images / "a.png"), "--model", run, "--out", str(out), "-q",
                 "--cam", "gradcam++", "--target", "L3"]) == 0
    with open(out / "explanations.csv", newline="") as fh:
        assert next(csv.DictReader(fh))["explained"] == "L3"
    before = _snapshot(out)
    assert main(["explain", str(images / "a.png"), "--model", run, "--out", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err and _snapshot(out) == before
    assert main(["explain", str(images / "a.png"), "--model", run, "--out", str(out),
                 "--overwrite", "-q"]) == 0
    for bad, msg in ((["--target", "L9"], "not one of the run's classes"),
                     (["--fold", "7"], "folds 0 to"), (["--cam", "scorecam"], "invalid choice")):
        assert main(["explain", str(images / "a.png"), "--model", run, "--out",
                     str(tmp_path / "o2"), *bad]) == 2
        assert msg in capsys.readouterr().err
    assert main(["explain", str(images), "--model", str(tmp_path), "--out",
                 str(tmp_path / "o3")]) == 2
    assert "run.json" in capsys.readouterr().err and not (tmp_path / "o3").exists()
    twin = tmp_path / "twin"
    twin.mkdir()
    Image.open(images / "a.png").save(twin / "a.jpg")
    assert main(["explain", str(images / "a.png"), str(twin / "a.jpg"), "--model", run,
                 "--out", str(tmp_path / "o4")]) == 2
    assert "same stem" in capsys.readouterr().err and not (tmp_path / "o4").exists()
