"""U-Net: network, augmentation, folds, run directories, resume, inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leukolib.data import Dataset, Sample, Subset, near_duplicate_groups
from leukolib.data.synthetic import SyntheticDataset
from leukolib.folds import holdout, kfold
from leukolib.runs import RunError
from leukolib.segmentation.augment import Augmentation, training_transforms
from leukolib.segmentation.evaluate import evaluate_segmentation, standard_methods
from leukolib.segmentation.hparams import DEFAULT_HPARAMS, unet_hparams
from leukolib.segmentation.training import train_unet
from leukolib.segmentation.unet import build_unet, load_unet_run, predict_proba

TINY = {"profile": "smoke", "image_size": 32, "folds": 2, "epochs": 1, "progress": False}


def _tiny_data(seed: int = 0) -> SyntheticDataset:
    return SyntheticDataset(n_images=6, size=64, seed=seed)


def renamed(base: Dataset, name: str) -> Subset:
    """The same samples under another dataset name."""
    view = Subset(base, range(len(base)))
    view.name = name
    return view


def _weights(run_dir) -> dict[str, torch.Tensor]:
    out = {}
    for path in sorted(run_dir.glob("fold_*.pt")):
        for name, t in torch.load(path, weights_only=True).items():
            out[f"{path.name}:{name}"] = t
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("unet") / "run"
    record = train_unet(_tiny_data(), run_dir, seed=0, **TINY)
    return run_dir, record


# ----------------------------------------------------------------------------- network


def test_network_shape_and_odd_sizes_map_back():
    net = build_unet(dropout=0.0).eval()
    assert tuple(net(torch.zeros(2, 3, 32, 32)).shape) == (2, 1, 32, 32)
    with pytest.raises(ValueError):
        predict_proba([net], np.zeros((10, 10, 3), np.uint8), size=30)
    images = [np.zeros((37, 45, 3), np.uint8), np.zeros((20, 16, 3), np.uint8)]
    probs = predict_proba([net], images, size=32)
    assert [p.shape for p in probs] == [(37, 45), (20, 16)]
    assert all(p.dtype == np.float32 and 0 <= p.min() <= p.max() <= 1 for p in probs)


class _RedIsNucleus(torch.nn.Module):
    """A fake network: logit = large where the red channel is bright."""

    def forward(self, x):
        return (x[:, :1] - 0.5) * 40


def test_probabilities_are_mapped_back_where_they_belong():
    image = np.zeros((37, 45, 3), np.uint8)
    image[5:20, 8:30, 0] = 255  # an off-centre red rectangle, odd size
    truth = image[..., 0] > 0
    mask = predict_proba([_RedIsNucleus()], image, size=32)[0] >= 0.5
    inter, union = (mask & truth).sum(), (mask | truth).sum()
    assert inter / union > 0.9


# ----------------------------------------------------------------------------- augmentation


def _pattern(seed=0):
    rng = np.random.default_rng(seed)
    mask = torch.from_numpy(rng.random((1, 16, 16)) > 0.6).float()
    mask[0, 0, :5] = 1  # break the symmetries, so every transform shows
    image = torch.rand(3, 16, 16) * 0.3
    image[0] = torch.where(mask[0] > 0, 0.9, 0.1)  # red channel encodes the mask
    return image, mask


def test_geometric_augmentation_keeps_image_and_mask_aligned():
    image, mask = _pattern()
    t = training_transforms(seed=1, aug=Augmentation(p_geometric=0.5, p_photometric=0.0))
    changed = 0
    for _ in range(30):
        out = t({"image": image.clone(), "mask": mask.clone()})
        assert out["image"].shape == (3, 16, 16) and out["mask"].shape == (1, 16, 16)
        assert torch.equal(out["mask"][0] > 0.5, out["image"][0] > 0.5)
        changed += not torch.equal(out["mask"], mask)
    assert changed > 10


def test_photometric_augmentation_touches_the_image_only():
    image, mask = _pattern()
    t = training_transforms(seed=2, aug=Augmentation(p_geometric=0.0, p_photometric=1.0))
    out = t({"image": image.clone(), "mask": mask.clone()})
    assert torch.equal(out["mask"], mask)
    assert not torch.allclose(out["image"], image)
    assert 0.0 <= out["image"].min() <= out["image"].max() <= 1.0


def test_stain_jitter_changes_colours_only_and_is_recorded_only_when_set():
    image, mask = _pattern()
    aug = Augmentation(p_geometric=0.0, p_photometric=0.0, stain_sigma=0.2, p_stain=1.0)
    t = training_transforms(seed=3, aug=aug)
    out = t({"image": image.clone(), "mask": mask.clone()})
    assert torch.equal(out["mask"], mask)
    assert not torch.allclose(out["image"], image)
    assert 0.0 <= out["image"].min() <= out["image"].max() <= 1.0
    assert aug.to_dict()["stain_sigma"] == 0.2 and "HED stain jitter" in aug.to_dict()["order"]
    plain = Augmentation().to_dict()  # runs without it keep the configuration they had
    assert "stain_sigma" not in plain and "p_stain" not in plain
    assert plain["order"].endswith("gamma/CLAHE/noise (image only), clip [0, 1]")


def test_augmentation_is_reproducible_for_a_seed():
    image, mask = _pattern()

    def stream(seed):
        t = training_transforms(seed=seed)
        return [t({"image": image.clone(), "mask": mask.clone()}) for _ in range(8)]

    a, b, c = stream(5), stream(5), stream(6)
    assert all(torch.equal(x["image"], y["image"]) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x["image"], y["image"]) for x, y in zip(a, c, strict=True))


# ----------------------------------------------------------------------------- folds


@pytest.mark.parametrize("n, k, v", [(23, 4, 0.2), (6, 2, 0.2), (10, 5, 0.0)])
def test_folds_disjoint_cover_and_val_not_in_test(n, k, v):
    folds = kfold(n, k, seed=3, val_fraction=v)
    tests = np.concatenate([f.test for f in folds])
    assert sorted(tests.tolist()) == list(range(n))  # each sample tested exactly once
    for f in folds:
        tr, va, te = set(f.train), set(f.val), set(f.test)
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert tr | va | te == set(range(n))
        assert (len(va) == 0) == (v == 0)
    again = kfold(n, k, seed=3, val_fraction=v)
    assert all(np.array_equal(a.val, b.val) for a, b in zip(folds, again, strict=True))
    with pytest.raises(ValueError):
        kfold(3, 4, seed=0)


def test_groups_never_straddle_a_split():
    groups = np.repeat(np.arange(10), 3)  # 10 groups of 3 (e.g. duplicates, or patients)
    labels = np.repeat(np.arange(10) % 2, 3)
    for f in kfold(30, 5, seed=0, groups=groups, labels=labels, val_fraction=0.25):
        parts = [set(groups[f.train]), set(groups[f.val]), set(groups[f.test])]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    rest, test = holdout(30, 0.2, seed=0, groups=groups, labels=labels)
    assert not set(groups[rest]) & set(groups[test]) and len(test) == 6


# ----------------------------------------------------------------------------- hparams


def test_hparams_default_paper_and_overrides():
    hp = unet_hparams("jtsc")
    assert hp == DEFAULT_HPARAMS and hp.source == "leukolib-default"
    paper = unet_hparams("bloodseg", source="paper")  # Table A2's SMC_IDB row
    assert (paper.lam, paper.delta, paper.gamma, paper.lr, paper.source) == (
        0.6, 0.7, 1.0, 1e-4, "paper")
    expected = {"lam": 0.5, "delta": 0.6, "gamma": 0.5, "lr": 1e-3, "dropout": 0.2}
    assert hp.values() == {**expected, "weight_decay": 1e-5}
    user = unet_hparams("jtsc", {"dropout": 0.1})
    assert user.dropout == 0.1 and user.source == "user"
    with pytest.raises(ValueError):
        unet_hparams("jtsc", {"momentum": 0.9})


# ----------------------------------------------------------------------------- training


def test_tiny_run_writes_the_run_directory(tiny_run):
    run_dir, record = tiny_run
    assert sorted(p.name for p in run_dir.iterdir()) == ["fold_00.pt", "fold_01.pt", "run.json",
                                                         "thumbnails.npz"]
    on_disk = json.loads((run_dir / "run.json").read_text())
    assert on_disk["status"] == "complete"
    cfg = on_disk["config"]
    assert (cfg["image_size"], cfg["folds"], cfg["epochs"], cfg["seed"]) == (32, 2, 1, 0)
    assert cfg["hparams_source"] == "leukolib-default" and cfg["profile"] == "smoke"
    assert on_disk["dataset"]["name"] == "synthetic" and len(on_disk["dataset"]["ids"]) == 6
    assert set(on_disk["versions"]) >= {"torch", "monai", "leukolib"}
    for fold in on_disk["folds"]:
        assert not set(fold["val_ids"]) & set(fold["test_ids"])
        assert len(fold["history"]) == 1
        assert set(fold["history"][0]) >= {"train_loss", "val_loss", "train_iou", "val_iou"}
    per_image = on_disk["oof"]["per_image"]
    assert sorted(r["id"] for r in per_image) == sorted(on_disk["dataset"]["ids"])
    assert 0.0 <= on_disk["oof"]["summary"]["iou"]["mean"] <= 1.0
    assert on_disk["timings"]["total_seconds"] > 0 and on_disk["timings"]["mean_epoch_seconds"] > 0
    assert on_disk["oof"] == record["oof"]


def test_second_call_resumes_without_retraining(tiny_run):
    run_dir, record = tiny_run
    stamps = {p.name: p.stat().st_mtime_ns for p in run_dir.glob("fold_*.pt")}
    again = train_unet(_tiny_data(), run_dir, seed=0, **TINY)
    assert again["oof"] == record["oof"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in run_dir.glob("fold_*.pt")}


def test_refuses_a_different_config_unless_overwrite(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    with pytest.raises(RunError, match="seed"):
        train_unet(_tiny_data(), run_dir, seed=1, **TINY)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty"):
        train_unet(_tiny_data(), tmp_path, seed=0, **TINY)


def test_load_predict_and_out_of_fold_predictor(tiny_run):
    run_dir, record = tiny_run
    state = torch.load(run_dir / "fold_00.pt", weights_only=True)
    assert all(isinstance(t, torch.Tensor) for t in state.values())
    run = load_unet_run(run_dir, device="cpu")
    data = _tiny_data()
    sample = data[0]
    prob = run.predict_proba(sample.image)
    assert prob.shape == (64, 64) and prob.dtype == np.float32
    odd = np.zeros((50, 70, 3), np.uint8)
    assert run.predict(odd).shape == (50, 70) and run.predict(odd).dtype == bool
    assert run.predict(odd, folds=1).shape == (50, 70)
    # OOF bookkeeping: every image gets only the model of the fold that held it out.
    for fold in record["folds"]:
        for i in fold["test_ids"]:
            assert run.folds_for(data[data.ids.index(i)]) == (fold["fold"],)
    predictor = run.predictor_for(data)
    assert predictor.mode == "out-of-fold"
    # ... and the OOF metrics of the record are those of the one evaluation path.
    rows = {r["id"]: r for r in record["oof"]["per_image"]}
    ev = evaluate_segmentation(data, standard_methods(predictor), progress=False, batch_size=4)
    deep = ev.per_image[ev.per_image["method"] == "DEEP"]
    assert deep["iou"].tolist() == pytest.approx([rows[i]["iou"] for i in data.ids])
    assert set(deep["mode"]) == {"out-of-fold"}
    # the same images under another name are still recognised by their pixels:
    # no model segments an image it trained on
    same = renamed(data, "jtsc")
    other = run.predictor_for(same)
    assert other.mode == "out-of-fold"
    assert np.array_equal(other(same[0]), predictor(data[0]))
    # same name and ids but other pixels: new images, all folds averaged
    new = _tiny_data(seed=1)
    assert run.predictor_for(new).mode == "fold-average"
    whole_set = run.predictor_for(new)  # at the scale estimated for the set
    assert np.array_equal(whole_set(new[0]),
                          run.predict_proba(new[0].image, diameter=whole_set.diameter) >= 0.5)
    assert run.folds_for(new[0]) is None


def _shifted(image: np.ndarray) -> np.ndarray:
    """The same smear moved by (3, 2) pixels and exposed darker: a near duplicate."""
    out = np.pad(image[3:, 2:], ((0, 3), (0, 2), (0, 0)), mode="edge").astype(float)
    return np.clip(0.8 * out + 10, 0, 255).astype(np.uint8)


class _WithTwin(Dataset):
    """Six smears, an exact copy of the first and a shifted, darker copy of the second."""

    name = "twins"

    def __init__(self) -> None:
        self.base = _tiny_data()

    def __len__(self) -> int:
        return 8

    @property
    def ids(self) -> list[str]:
        return [*self.base.ids, "twin_of_0", "near_of_1"]

    def _load(self, index: int) -> Sample:
        s = self.base[index % 6 if index < 7 else 1]
        image = _shifted(s.image) if index == 7 else s.image
        return Sample(image, s.nucleus, s.cytoplasm, s.label, self.ids[index])


def test_a_duplicate_shares_its_twins_fold_and_is_never_out_of_fold_of_it(tmp_path):
    data = _WithTwin()
    record = train_unet(data, tmp_path / "twins", seed=0, **TINY)
    folds = {i: f["fold"] for f in record["folds"] for i in f["test_ids"]}
    assert folds["twin_of_0"] == folds[data.ids[0]]  # grouped by fingerprint
    assert folds["near_of_1"] == folds[data.ids[1]]  # ... and as near duplicates
    assert near_duplicate_groups(data).tolist() == [0, 1, 2, 3, 4, 5, 0, 1]  # detected, not luck
    assert record["config"]["groups"]["by"] == ["identical pixels", "near duplicates"]
    run = load_unet_run(tmp_path / "twins")
    for f in record["folds"]:
        seen = set(f["train_ids"]) | set(f["val_ids"])
        assert ("twin_of_0" in seen) == (data.ids[0] in seen)
        assert ("near_of_1" in seen) == (data.ids[1] in seen)
    assert run.folds_for(data[6]) == (folds["twin_of_0"],)
    # an image the run never had, a shifted copy of a training image: recognised by its thumbnail
    other = _shifted(data[2].image)
    assert run.folds_for(other) == (folds[data.ids[2]],)
    import leukolib.segmentation.unet as unet_module

    scored = unet_module.matches_against
    unet_module.matches_against = None  # a second look must not score the thumbnails again
    try:
        assert run.folds_for(other) == (folds[data.ids[2]],)
    finally:
        unet_module.matches_against = scored
    # without the thumbnails (a run written before they were kept), only identical pixels
    (tmp_path / "twins" / "thumbnails.npz").unlink()
    assert load_unet_run(tmp_path / "twins").folds_for(other) is None


def test_res_units_are_recorded_and_the_run_loads_with_them(tmp_path):
    record = train_unet(_tiny_data(), tmp_path / "deeper", seed=0, res_units=1, **TINY)
    assert record["config"]["network"]["num_res_units"] == 1
    state = torch.load(tmp_path / "deeper" / "fold_00.pt", weights_only=True)
    assert any(".residual." in k for k in state)  # residual units, not the default single convs
    run = load_unet_run(tmp_path / "deeper", device="cpu")
    assert run.predict_proba(_tiny_data()[0].image).shape == _tiny_data()[0].image.shape[:2]


def test_a_run_of_other_pixels_is_not_reused(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    with pytest.raises(RunError, match="trained on other pixels"):
        train_unet(_tiny_data(seed=1), run_dir, seed=0, **TINY)


def test_same_seed_same_weights_on_cpu(tiny_run, tmp_path):
    run_dir, record = tiny_run
    torch.manual_seed(123)
    again = train_unet(_tiny_data(), tmp_path / "again", seed=0, device="cpu", **TINY)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))  # the caller's generator is left alone
    a, b = _weights(run_dir), _weights(tmp_path / "again")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again["oof"] == record["oof"]


def test_interrupted_fold_resumes_from_its_checkpoint_exactly(tmp_path):
    kwargs = {**TINY, "epochs": 2}
    full = train_unet(_tiny_data(), tmp_path / "full", seed=0, **kwargs)

    def stop(fold, row):
        if fold == 0 and row["epoch"] == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_unet(_tiny_data(), tmp_path / "cut", seed=0, on_epoch_end=stop, **kwargs)
    assert (tmp_path / "cut" / "fold_00.ckpt").is_file()
    resumed = train_unet(_tiny_data(), tmp_path / "cut", seed=0, **kwargs)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["oof"] == full["oof"]
    assert not list((tmp_path / "cut").glob("*.ckpt"))


@pytest.mark.shared
def test_tiny_run_on_real_jtsc_images(jtsc_root, tmp_path):
    from leukolib.data import Subset, load_dataset

    data = Subset(load_dataset("jtsc", jtsc_root), range(6))
    record = train_unet(data, tmp_path / "jtsc", seed=0, **TINY)
    assert record["dataset"]["root"] == str(jtsc_root)  # what load_dataset("jtsc", root) reads
    assert record["dataset"]["ids"] == data.ids
    run = load_unet_run(tmp_path / "jtsc", device="cpu")
    assert run.predictor_for(data).mode == "out-of-fold"
    assert run.predict(data[0]).shape == data[0].nucleus.shape == (120, 120)


def _fit_steps(sign: float, steps: int = 40) -> tuple[float, float]:
    """IoU on 6 synthetic smears before and after ``steps`` Adam steps on ``sign * loss``."""
    from leukolib.segmentation.augment import (
        image_to_tensor,
        mask_to_tensor,
        resize_image,
        resize_mask,
    )
    from leukolib.segmentation.losses import UnifiedFocalLoss
    from leukolib.segmentation.training import _iou_per_image

    data = SyntheticDataset(n_images=6, size=64, seed=2)
    x = torch.stack([resize_image(image_to_tensor(s.image), 48) for s in data])
    y = torch.stack([resize_mask(mask_to_tensor(s.nucleus), 48) for s in data])
    torch.manual_seed(0)
    net = build_unet(dropout=0.0)
    loss_fn = UnifiedFocalLoss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    with torch.no_grad():
        before = float(_iou_per_image(net.eval()(x), y).mean())
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        (sign * loss_fn(net(x), y)).backward()
        opt.step()
    with torch.no_grad():
        after = float(_iou_per_image(net.eval()(x), y).mean())
    return before, after


def test_the_unet_learns_the_nucleus_and_not_with_the_loss_reversed():
    before, after = _fit_steps(+1.0)
    assert after > 0.5 and after > before + 0.3, (before, after)
    _, reversed_ = _fit_steps(-1.0)
    assert reversed_ < 0.2, reversed_  # the same test fails if the loss's sign is wrong
