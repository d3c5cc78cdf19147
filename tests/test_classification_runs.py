"""Classifier runs, really trained (smoke sizes, random init): protocol, resume, contract, CLI."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from leukolib.classification import (
    classifier_runs,
    load_classifier_run,
    merge_classifier_runs,
    train_classifier,
    train_grid,
)
from leukolib.classification.baselines import run_baselines
from leukolib.classification.masks import SegmenterError, train_segmenter_for
from leukolib.classification.report import (
    against,
    grid_table,
    load_records,
    segmented_vs_raw,
    table5_beside_paper,
    table6_beside_paper,
)
from leukolib.cli import main
from leukolib.data import profile_dataset
from leukolib.runs import RunError

KEYS = ["segmented-relu-linear", "raw-relu-linear"]


@pytest.fixture(scope="module")
def smoke_data():
    return profile_dataset("synthetic", None, "smoke", 0, stage="classification")


@pytest.fixture(scope="module")
def grid(tmp_path_factory, smoke_data):
    out = classifier_runs(tmp_path_factory.mktemp("cls"), "synthetic", "smoke", 0)
    # whole images (no crop around the nucleus), so that the raw run needs no mask
    records = train_grid(smoke_data, out, "smoke", 0, keys=KEYS, crop=None, progress=False)
    return out, records


def test_grid_follows_the_protocol(grid, smoke_data):
    out, records = grid
    assert list(records) == KEYS and out.name == "classifiers_synthetic_smoke_seed0"
    a, b = (records[k] for k in KEYS)
    assert a["split"] == b["split"]  # every model on the same split
    test = set(a["split"]["test_ids"])
    assert len(test) == 4  # smoke: 25 % of 16
    for f in a["folds"]:
        assert not test & set(f["train_ids"]) and not test & set(f["val_ids"])
        assert not set(f["train_ids"]) & set(f["val_ids"])
    vals = sorted(i for f in a["folds"] for i in f["val_ids"])
    assert vals == sorted(a["split"]["trainval_ids"])  # each image validated exactly once
    c = a["config"]
    assert (c["weights"], c["lr_kind"], c["lr"]) == ("random", "scratch", 1e-3)
    assert c["segmenter"]["name"] == "handcrafted" and b["config"]["segmenter"] is None
    assert (out / "masks" / "handcrafted").is_dir()
    s = a["summary"]
    assert 0 <= s["test_acc_ci"][0] <= s["test_acc"] <= s["test_acc_ci"][1] <= 1
    assert a["status"] == "complete" and sorted(load_records(out)) == sorted(KEYS)


def test_the_run_contract(grid, smoke_data):
    out, records = grid
    run = load_classifier_run(out / KEYS[0], device="cpu")
    assert run.class_names == ("L1", "L2", "L3") and run.key == KEYS[0]
    assert run.config["input"] == "segmented" and run.n_folds == 2
    assert run.best_fold in (0, 1)
    model = run.model(run.best_fold)
    assert not model.training and model.layer4[-1] is not None
    images = [smoke_data[i].image for i in range(3)]
    prep = run.prepare(images)
    assert prep.x.shape == (3, 3, 32, 32) and prep.images[0].shape == (32, 32, 3)
    assert prep.masks[0].shape == (32, 32) and prep.warp[0](smoke_data[0].nucleus).shape == (32, 32)
    avg, one = run.logits(prep.x), run.logits(prep.x, folds=0)
    both = run.logits(prep.x, folds=[0, 1])
    assert avg.shape == (3, 3) and np.allclose(avg, both) and not np.allclose(avg, one)
    assert np.allclose(run.predict_images(images), avg, atol=1e-5)
    z = run.saved_logits()
    rec = records[KEYS[0]]
    assert z["test_logits"].shape == (2, 4, 3) and list(z["test_ids"]) == rec["split"]["test_ids"]
    assert z["oof_logits"].shape == (12, 3) and sorted(z["oof_folds"].tolist()) == [0] * 6 + [1] * 6
    assert np.array_equal(z["test_logits"].mean(0).argmax(1), rec["test"]["pred"])
    # the saved test logits are what the loaded models give on the same images
    test = [smoke_data[smoke_data.ids.index(i)].image for i in rec["split"]["test_ids"]]
    assert np.allclose(run.predict_images(test, folds=1), z["test_logits"][1], atol=1e-4)
    # predictions use a copy with folded batch norms; model() keeps them (the sanity check's)
    fast = run.inference_model(run.best_fold)
    assert not any(isinstance(q, torch.nn.BatchNorm2d) for q in fast.modules())
    assert any(isinstance(q, torch.nn.BatchNorm2d) for q in run.model(run.best_fold).modules())
    assert run.model(run.best_fold) is model
    # a model first loaded inside inference mode still gives gradients (CAMs)
    again = load_classifier_run(out / KEYS[0], device="cpu")
    with torch.inference_mode():
        again.logits(prep.x[:1])
    again.inference_model(0)(prep.x[:1]).sum().backward()
    raw = load_classifier_run(out / KEYS[1], device="cpu")
    assert raw.prepare(images).masks is None  # a raw run given no masks goes without
    assert raw.prepare(images, [smoke_data[i].nucleus for i in range(3)]).masks is not None
    assert run.history()[["fold", "epoch", "train_acc", "val_acc"]].shape[0] == 2


def test_resume_refuse_and_reproduce(grid, smoke_data, tmp_path):
    out, records = grid
    again = train_classifier(smoke_data, out / KEYS[0], input="segmented", profile="smoke",
                             seed=0, crop=None, progress=False, mask_cache=out / "masks")
    assert again == records[KEYS[0]]  # complete: returned at once
    with pytest.raises(RunError, match="another configuration"):
        train_classifier(smoke_data, out / KEYS[0], input="segmented", act="mish",
                         profile="smoke", seed=0, crop=None, progress=False)
    # the same seed gives the same weights on the CPU: a second run, and an interrupted one
    rec = train_classifier(smoke_data, tmp_path / "copy", input="raw", profile="smoke", seed=0,
                           crop=None, progress=False)
    z0 = np.load(out / KEYS[1] / "logits.npz")
    z1 = np.load(tmp_path / "copy" / "logits.npz")
    assert np.array_equal(z0["test_logits"], z1["test_logits"])
    assert rec["test"] == records[KEYS[1]]["test"]
    partial = json.loads((tmp_path / "copy" / "run.json").read_text())
    partial["folds"], partial["status"] = partial["folds"][:1], "running"
    (tmp_path / "copy" / "run.json").write_text(json.dumps(partial))
    (tmp_path / "copy" / "fold_01.pt").unlink()
    resumed = train_classifier(smoke_data, tmp_path / "copy", input="raw", profile="smoke",
                               seed=0, crop=None, progress=False)
    assert resumed["status"] == "complete" and len(resumed["timings"]["fold_seconds"]) == 3
    assert np.array_equal(np.load(tmp_path / "copy" / "logits.npz")["test_logits"],
                          z0["test_logits"])


def test_small_folds_train_for_the_step_budget(smoke_data, tmp_path):
    from dataclasses import replace

    from leukolib.profiles import get_profile

    prof = get_profile("smoke")
    # the synthetic smears have their own minimum (9): the run must use it, not the real one
    assert smoke_data.name == "synthetic"
    steps = replace(prof, classification=replace(prof.classification, min_steps=5,
                                                 synthetic_min_steps=9))
    rec = train_classifier(smoke_data, tmp_path / "run", input="raw", profile=steps, seed=0,
                           crop=None, progress=False)
    n_train = min(len(f["train_ids"]) for f in rec["folds"])
    per_epoch = -(-n_train // rec["config"]["batch_size"])
    assert rec["config"]["epochs"] == max(1, -(-9 // per_epoch)) > prof.classification.epochs
    assert all(len(f["history"]) == rec["config"]["epochs"] for f in rec["folds"])


def test_baselines_and_tables(grid, smoke_data):
    out, records = grid
    base = run_baselines(smoke_data, records[KEYS[0]], seed=0, progress=False)
    assert set(base) == {"handcrafted", "color"}
    for b in base.values():
        assert b["test"]["ids"] == records[KEYS[0]]["split"]["test_ids"]
        assert 0 <= b["test"]["accuracy"] <= 1 and len(b["val_acc_folds"]) == 2
    table = grid_table(records)
    assert list(table.index) == KEYS and {"test acc", "CI low", "F1 weighted"} <= set(table)
    twins = segmented_vs_raw(records)
    assert list(twins.index) == ["relu-linear"] and 0 <= twins["McNemar p"].iloc[0] <= 1
    vs = against(records, base["color"], name="colour")
    assert list(vs.columns[:2]) == ["accuracy", "colour accuracy"]
    for t in (twins, vs):  # verdicts on Holm-adjusted p-values, the table says so
        assert (t["Holm p"] >= t["McNemar p"]).all() and "verdict" in t
        assert "Holm-adjusted" in t.attrs["note"]
    lo, hi = table.loc[KEYS[0], ["CI low", "CI high"]]
    assert lo < hi  # an exact interval: never of zero width
    t5 = table5_beside_paper(records)
    assert (t5.source == "leukolib").sum() == 2 and t5.source.str.startswith("paper").sum() == 4
    t6 = table6_beside_paper(records, base)
    assert "color baseline" in set(t6.method) and "AlexNet [16]" in set(t6.method)


def test_unet_that_saw_a_test_image_is_refused(tmp_path):
    from leukolib.segmentation.training import train_unet

    ds = profile_dataset("synthetic", None, "smoke", 0, stage="classification")
    leaky = tmp_path / "unet_all"
    train_unet(ds, leaky, profile="smoke", seed=0, progress=False)
    with pytest.raises(SegmenterError, match=r"trained on \d+ of the classifier's test images"):
        train_classifier(ds, tmp_path / "cls", segmenter="ensemble", seg_model=leaky,
                         profile="smoke", progress=False)
    clean = tmp_path / "unet_trainval"
    train_segmenter_for(ds, clean, profile="smoke", seed=0, progress=False)
    rec = train_classifier(ds, tmp_path / "cls2", segmenter="ensemble", seg_model=clean,
                           profile="smoke", progress=False, epochs=1)
    assert rec["config"]["segmenter"]["name"] == "ensemble"
    trained = set(json.loads((clean / "run.json").read_text())["dataset"]["ids"])
    assert not trained & set(rec["split"]["test_ids"])


def test_a_profile_with_the_ensemble_trains_its_unet_without_the_test(tmp_path):
    from dataclasses import replace

    from leukolib.classification.grid import SegmenterFallbackWarning, resolve_segmenter
    from leukolib.data.base import Subset
    from leukolib.profiles import get_profile

    smoke = get_profile("smoke")
    ensemble = replace(smoke, classification=replace(smoke.classification, segmenter="ensemble"))
    ds = profile_dataset("synthetic", None, "smoke", 0, stage="classification")
    records = train_grid(ds, tmp_path / "grid", ensemble, 0, keys=KEYS[:1], crop=None,
                         progress=False, epochs=1)
    rec = records[KEYS[0]]
    assert rec["config"]["segmenter"]["name"] == "ensemble"
    unet = tmp_path / "grid" / "segmenter"
    trained = set(json.loads((unet / "run.json").read_text())["dataset"]["ids"])
    assert trained and not trained & set(rec["split"]["test_ids"])
    # the profile's handcrafted mask, and a dataset without masks, need no U-Net
    assert resolve_segmenter(ds, tmp_path / "x", smoke, 0).name == "handcrafted"
    no_masks = Subset(ds, list(range(len(ds))))
    no_masks.has_masks = False
    with pytest.warns(SegmenterFallbackWarning, match="has none"):
        spec = resolve_segmenter(no_masks, tmp_path / "y", ensemble, 0)
    assert spec.name == "handcrafted" and spec.model is None and not (tmp_path / "y").exists()
    with pytest.raises(ValueError, match="segmenter must be"):
        replace(smoke.classification, segmenter="oracle")
    assert get_profile("paper").classification.segmenter == "ensemble"


def test_cli_train_and_classify(grid, smoke_data, tmp_path, capsys):
    out, _ = grid
    folder = tmp_path / "imgs"
    folder.mkdir()
    import cv2

    for i in range(3):
        cv2.imwrite(str(folder / f"cell{i}.png"), smoke_data[i].image[..., ::-1])
    (folder / "broken.png").write_bytes(b"not an image")
    preds = tmp_path / "pred.csv"
    code = main(["classify", str(folder), "--model", str(out / KEYS[0]), "--out", str(preds),
                 "--quiet"])
    assert code == 1  # the broken file is listed, the others classified
    err = capsys.readouterr().err
    assert "broken.png" in err and "classified 3 image(s)" in err
    rows = list(csv.DictReader(preds.open()))
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["cell0.png", "cell1.png", "cell2.png"]
    p = np.array([[float(r[f"p_{c}"]) for c in ("L1", "L2", "L3")] for r in rows])
    assert np.allclose(p.sum(1), 1, atol=1e-4) and {r["prediction"] for r in rows} <= {"L1", "L2",
                                                                                         "L3"}
    assert main(["classify", str(folder / "cell0.png"), "--model", str(out / KEYS[0]),
                 "--out", str(preds), "--quiet"]) == 2  # exists: refused
    assert main(["classify", str(folder / "cell0.png"), "--model", str(out / KEYS[0]),
                 "--out", str(preds), "--overwrite", "--quiet", "--fold", "best"]) == 0
    assert len(list(csv.DictReader(preds.open()))) == 1
    assert main(["classify", str(folder / "cell0.png"), "--model", str(out / KEYS[0]),
                 "--out", str(preds), "--overwrite", "--fold", "7"]) == 2
    assert main(["train-classifier", "-d", "synthetic", "--grid", "--input", "raw",
                 "-o", str(tmp_path / "g")]) == 2
    code = main(["train-classifier", "-d", "synthetic", "--profile", "smoke", "--input", "raw",
                 "--act", "mish", "--head", "medium", "-o", str(tmp_path / "r"), "--quiet"])
    assert code == 0 and "raw-mish-medium: test accuracy" in capsys.readouterr().out
    run = load_classifier_run(tmp_path / "r")
    assert isinstance(run.model(0).fc[1], torch.nn.Mish)
    # synthetic smears are whole fields: by default a fixed window around the nucleus
    assert (run.config["crop"], run.config["crop_min"]) == (0.25, 0.375)
    assert run.prepare([smoke_data[0].image]).masks is not None


def _untimed(fold: dict) -> dict:
    """A fold's record entry without its timings (all that differs between two trainings)."""
    drop = [k for k in fold if k.endswith("seconds")]
    history = [{k: v for k, v in row.items() if not k.endswith("seconds")}
               for row in fold["history"]]
    return {**{k: v for k, v in fold.items() if k not in drop}, "history": history}


def test_folds_trained_apart_merge_into_the_one_call_run(grid, smoke_data, tmp_path, capsys):
    out, records = grid
    one = records[KEYS[1]]  # raw-relu-linear: both folds in one call
    p0, p1, merged_dir = tmp_path / "p0", tmp_path / "p1", tmp_path / "merged"
    part = train_classifier(smoke_data, p0, input="raw", profile="smoke", seed=0, crop=None,
                            progress=False, fold=0)
    assert part["status"] == "partial" and [f["fold"] for f in part["folds"]] == [0]
    assert not (p0 / "logits.npz").exists()
    # the other fold by the command line, as another machine's job would
    argv = ["train-classifier", "-d", "synthetic", "--profile", "smoke", "--input", "raw",
            "--crop", "none", "-o", str(p1), "-q", "--fold"]
    assert main([*argv, "1"]) == 0 and "fold(s) 1 of 2 trained (partial" in capsys.readouterr().out
    assert main([*argv, "2"]) == 2 and "fold 2 out of range" in capsys.readouterr().err
    assert main(["merge-runs", str(p0), str(p1), "-o", str(merged_dir)]) == 0
    merged = json.loads((merged_dir / "run.json").read_text())
    assert merged["status"] == "complete"
    for key in ("config", "split", "test", "oof", "summary"):
        assert merged[key] == one[key], key
    assert list(map(_untimed, merged["folds"])) == list(map(_untimed, one["folds"]))
    assert [m["folds"] for m in merged["merged_from"]] == [[0], [1]]
    z1, zm = np.load(out / KEYS[1] / "logits.npz"), np.load(merged_dir / "logits.npz")
    assert z1.files == zm.files
    for k in z1.files:  # training is bit-exact on the CPU: exact equality
        assert z1[k].dtype == zm[k].dtype and np.array_equal(z1[k], zm[k]), k
    # grid folders (train_grid(..., fold=K)) merge model by model
    for k, src in enumerate((p0, p1)):
        shutil.copytree(src, tmp_path / f"grid{k}" / KEYS[1])
    assert main(["merge-runs", "--grid", str(tmp_path / "grid0"), str(tmp_path / "grid1"),
                 "-o", str(tmp_path / "grid")]) == 0
    assert np.array_equal(np.load(tmp_path / "grid" / KEYS[1] / "logits.npz")["test_logits"],
                          z1["test_logits"])
    # what does not merge is refused, naming the part and the problem; nothing is written
    bad = tmp_path / "bad"
    with pytest.raises(RunError, match=r"fold 0 is in .*p0 and in .*merged"):
        merge_classifier_runs([p0, merged_dir], bad)
    with pytest.raises(RunError, match=r"fold\(s\) 1 of 2 in none of the parts"):
        merge_classifier_runs([p0], bad)
    with pytest.raises(RunError, match=r"segmented-relu-linear: another configuration .*input"):
        merge_classifier_runs([p1, out / KEYS[0]], bad)
    assert not bad.exists()
    assert main(["merge-runs", str(p0), str(p1), "-o", str(merged_dir)]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    # a later call with the missing fold completes a partial run in place, the same run
    done = train_classifier(smoke_data, p0, input="raw", profile="smoke", seed=0, crop=None,
                            progress=False)
    assert done["status"] == "complete" and done["summary"] == one["summary"]
