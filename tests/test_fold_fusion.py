"""Each fold's fusion rule, chosen on its own validation images."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from leukolib.data.synthetic import SyntheticDataset
from leukolib.metrics import segmentation_metrics
from leukolib.segmentation import fold_fusion as ff
from leukolib.segmentation.ensemble import ENSEMBLE, EnsembleParams, EnsembleSegmenter, fuse
from leukolib.segmentation.evaluate import evaluate_segmentation, standard_methods
from leukolib.segmentation.handcrafted import segment_nucleus
from leukolib.segmentation.training import train_unet
from leukolib.segmentation.unet import load_unet_run

TINY = {"profile": "smoke", "image_size": 32, "folds": 2, "epochs": 1, "progress": False}


def _data(seed: int = 0) -> SyntheticDataset:
    return SyntheticDataset(n_images=8, size=64, seed=seed)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("unet") / "run"
    train_unet(_data(), run_dir, seed=0, **TINY)
    return load_unet_run(run_dir, device="cpu")


def test_a_fold_keeps_the_global_rule_unless_a_candidate_beats_it():
    base = EnsembleParams()
    cands = list(ff.fold_candidates(base))
    tie = pd.DataFrame([[0.8] * len(cands)], columns=cands, index=[0])
    assert ff.FoldFusions(base, tie).chosen == {0: "global"}
    better = tie.copy()
    better.loc[0, "SOFT w=0.67"] = 0.81
    rules = ff.FoldFusions(base, better)
    assert rules.chosen == {0: "SOFT w=0.67"}
    assert rules.params(0) == replace(base, fusion="soft", soft_weight=0.67)
    assert rules.params(None) == base and rules.params(7) == base  # no fold: the global rule
    record = rules.to_dict()
    assert record["folds"][0]["chosen"] == "SOFT w=0.67" and record["base"] == base.to_dict()


def test_folds_choose_on_their_validation_images_only(run):
    data = _data()
    pred = run.predictor_for(data)
    rules = ff.choose_fold_fusions(run, data, diameter=pred.diameter, progress=False)
    folds = run.record["folds"]
    assert sorted(rules.chosen) == [f["fold"] for f in folds]
    assert rules.n_val == {f["fold"]: len(f["val_ids"]) for f in folds}
    # each score is the candidate's mean IoU on the fold's validation images, with its model
    f0 = folds[0]
    q = ff.fold_candidates()["OR t=0.3"]
    ious = []
    for sid in f0["val_ids"]:
        s = data[data.ids.index(sid)]
        hm = segment_nucleus(s.image)
        p = run.predict_proba(s.image, folds=f0["fold"], diameter=pred.diameter)
        ious.append(segmentation_metrics(fuse(hm, p, q), s.nucleus)["iou"])
        assert sid not in f0["test_ids"]
    assert rules.scores.loc[f0["fold"], "OR t=0.3"] == pytest.approx(np.mean(ious))


def test_the_ensemble_takes_each_images_fold_rule_on_the_runs_own_images(run):
    data = _data()
    pred = run.predictor_for(data)
    rules = pred.fold_fusions(EnsembleParams())
    assert rules is not None
    ev = evaluate_segmentation(data, standard_methods(pred), progress=False, batch_size=4)
    got = ev.per_image[ev.per_image["method"] == ENSEMBLE].set_index("id")["iou"]
    seg = EnsembleSegmenter(run.predictor_for(data))
    for f in run.record["folds"]:
        q = rules.params(f["fold"])
        for sid in f["test_ids"]:
            s = data[data.ids.index(sid)]
            hm = segment_nucleus(s.image)
            want = fuse(hm, pred.proba(s, handcrafted_mask=hm), q)
            assert got[sid] == pytest.approx(segmentation_metrics(want, s.nucleus)["iou"])
            assert np.array_equal(seg(s), want)
    assert ff.PER_FOLD_LABEL in ev.info[data.name]["ensemble"]
    # without it, or on images no fold held out, the global rule everywhere
    plain = evaluate_segmentation(data, standard_methods(pred, fold_fusion=False),
                                  progress=False, batch_size=4)
    assert ff.PER_FOLD_LABEL not in plain.info[data.name]["ensemble"]
    new = run.predictor_for(_data(seed=1))
    assert new.mode == "fold-average" and new.fold_fusions(EnsembleParams()) is None


def test_a_set_without_the_validation_images_keeps_the_global_rule(run):
    data = _data()
    other = _data(seed=1)  # the same ids, other pixels: not the run's validation images
    assert other.ids == data.ids
    with pytest.raises(ValueError, match="validation images"):
        ff.choose_fold_fusions(run, other, progress=False)
    assert run.predictor_for(data).fold_fusions(EnsembleParams()) is not None


class _Renamed:
    """The same images under other ids (renamed files)."""

    def __init__(self, base):
        self.base, self.name = base, base.name
        self.ids = [f"renamed_{sid}" for sid in base.ids]
        self.has_masks = True

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        return replace(self.base[i], id=self.ids[i])


def test_a_set_that_renamed_the_images_finds_them_by_their_pixels(run):
    data = _data()
    renamed = _Renamed(data)
    assert not set(renamed.ids) & set(data.ids)
    pred = run.predictor_for(data)
    mine = ff.choose_fold_fusions(run, data, diameter=pred.diameter, progress=False)
    theirs = ff.choose_fold_fusions(run, renamed, diameter=pred.diameter, progress=False)
    pd.testing.assert_frame_equal(theirs.scores, mine.scores)
    assert theirs.n_val == mine.n_val and theirs.chosen == mine.chosen


class _Swapped(_Renamed):
    """The run's images with two ids swapped: each of the two names the other's pixels."""

    def __init__(self, base, a: str, b: str):
        super().__init__(base)
        self.ids = list(base.ids)
        i, j = self.ids.index(a), self.ids.index(b)
        self.ids[i], self.ids[j] = b, a


def test_an_image_under_a_validation_id_must_have_its_recorded_pixels(run):
    data = _data()
    f0 = run.record["folds"][0]
    v, t = str(f0["val_ids"][0]), str(f0["train_ids"][0])  # fold 0 trained on t's pixels
    swapped = _Swapped(data, v, t)
    pred = run.predictor_for(data)
    mine = ff.choose_fold_fusions(run, data, diameter=pred.diameter, progress=False)
    theirs = ff.choose_fold_fusions(run, swapped, diameter=pred.diameter, progress=False)
    # under v, fold 0 now finds a training image of its own: not one of its validation images
    assert theirs.n_val.get(f0["fold"], 0) == mine.n_val[f0["fold"]] - 1
