"""``benchmarks/gpu_check.py`` runs (``--smoke``, on the CPU): the GPU check cannot rot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_check_smoke_writes_its_measures(tmp_path, capsys):
    out = tmp_path / "gpu_check.json"
    assert _module().main(["--smoke", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["environment"]["device"] == "cpu"
    for stage in ("unet", "resnet50"):
        assert r[stage]["train_images_per_second"] > 0
        assert 0 <= r[stage]["dataloader_share"] < 1
    assert r["resnet50"]["arch"] == "resnet50" and r["resnet50"]["inference_images_per_second"] > 0
    assert "random initialisation" in r["resnet50"]["weights_note"]  # and says so
    assert "train img/s" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # never overwrites without --overwrite
        _module().main(["--smoke", "--out", str(out)])
