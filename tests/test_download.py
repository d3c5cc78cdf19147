"""Public datasets fetched by name: the cache, the clear offline error, the manifest checks.

No test reaches the network: every socket lookup and connection fails here, and the tests
that need an archive build a tiny one and hand it over in place of ``pooch.retrieve``.
"""

from __future__ import annotations

import importlib
import socket
import zipfile
from pathlib import Path

import numpy as np
import pooch
import pytest
from PIL import Image

from leukolib.data import load_dataset, profile_dataset
from leukolib.data.download import data_dir, download, fetch, verify, write_manifest
from leukolib.errors import DatasetError, DownloadError

# The module itself: `leukolib.data.download` is also the name of the function.
dl = importlib.import_module("leukolib.data.download")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach a host fails, as on a machine without network."""

    def refuse(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "network disabled in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder, named by LEUKOLIB_DATA."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("LEUKOLIB_DATA", str(folder))
    return folder


def make_repo(root: Path, number: int = 1, n: int = 2) -> Path:
    """A tiny copy of segmentation_WBC's layout: NNN.bmp, NNN.png, labels, LICENSE."""
    folder = root / f"Dataset {number}"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(number)
    for i in range(1, n + 1):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.bmp"
        )
        mask = np.zeros((12, 12), np.uint8)
        mask[2:10, 2:10], mask[4:8, 4:8] = 128, 255
        Image.fromarray(mask).save(folder / f"{i:03d}.png")
    rows = "".join(f"{i},{i % 5 + 1}\r\n" for i in range(1, n + 1))
    (root / f"Class Labels of Dataset {number}.csv").write_text("image ID,class label\r\n" + rows)
    (root / "LICENSE").write_text("GNU GENERAL PUBLIC LICENSE\nVersion 3\n")
    return root


@pytest.fixture
def published(tmp_path, monkeypatch) -> Path:
    """A tiny 'published' JTSC, with the manifest leukolib checks against written from it."""
    repo = make_repo(tmp_path / "published")
    manifests = tmp_path / "manifests"
    write_manifest("jtsc", repo, manifests / "jtsc.csv")
    monkeypatch.setattr(dl, "_MANIFEST_DIR", manifests)
    return repo


@pytest.fixture
def prepared(cache, published) -> Path:
    """The cache as a Colab machine has it after a first fetch (made offline)."""
    root = cache / "segmentation_WBC"
    make_repo(root)
    return root


@pytest.fixture
def github(published, monkeypatch) -> list[dict]:
    """A network that serves the published archive: pooch.retrieve writes it."""
    calls: list[dict] = []

    def retrieve(url, known_hash=None, fname=None, path=None, downloader=None, **kw):
        calls.append({"url": url, "progressbar": downloader.progressbar})
        archive = Path(path) / fname
        archive.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive, "w") as zf:
            for p in sorted(published.rglob("*")):
                zf.write(p, f"segmentation_WBC-abc/{p.relative_to(published).as_posix()}")
        return str(archive)

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    return calls


@pytest.fixture
def no_download(monkeypatch):
    def retrieve(*args, **kwargs):
        pytest.fail("downloaded although the data is in the cache")

    monkeypatch.setattr(pooch, "retrieve", retrieve)


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- cache hit


def test_the_cache_folder_is_leukolib_data_else_pooch_s(cache, monkeypatch):
    assert data_dir() == cache
    monkeypatch.delenv("LEUKOLIB_DATA")
    assert data_dir() == Path(pooch.os_cache("leukolib"))


def test_jtsc_without_a_root_reads_a_prepared_cache(prepared, no_download):
    before = snapshot(prepared)
    ds = load_dataset("jtsc", None)
    assert len(ds) == 2 and ds.has_masks and ds.records[0].image.parent == prepared / "Dataset 1"
    assert ds.class_names[0] == "neutrophil" and ds.labels.tolist() == [1, 2]
    assert len(profile_dataset("jtsc", "", "smoke", seed=0)) == 2  # a notebook's empty data_root
    assert fetch("jtsc") == prepared
    assert snapshot(prepared) == before  # nothing written nor replaced


def test_a_notebook_with_dataset_jtsc_and_no_data_root_runs_from_the_cache(
    prepared, no_download, tmp_path
):
    from leukolib.notebook import setup

    run = setup("00_fetch", "smoke", "jtsc", None, tmp_path / "out", seed=0, device="cpu")
    assert len(run.dataset) == 2 and run.dataset.name == "jtsc"


# ----------------------------------------------------------------------------- offline, empty


def test_offline_with_an_empty_cache_says_where_to_put_the_files_in_one_line(cache):
    with pytest.raises(DatasetError) as info:
        load_dataset("jtsc", None)  # the real pooch download, failing on the blocked network
    message = str(info.value)
    assert "\n" not in message
    assert "put the 'Dataset 1' folder, 'Class Labels of Dataset 1.csv' and LICENSE" in message
    assert f"in {cache / 'segmentation_WBC'}," in message and "LEUKOLIB_DATA" in message
    assert isinstance(info.value.__cause__, DownloadError)
    with pytest.raises(DownloadError, match="cannot download 'jtsc'"):
        fetch("jtsc")
    with pytest.raises(DatasetError, match="'Dataset 2' folder"):
        profile_dataset("cellavision", None, "smoke")
    assert not cache.exists(), "a failed download left a folder behind"


def test_the_command_line_reports_an_offline_fetch_in_one_line(cache, capsys, tmp_path):
    from leukolib.cli import main

    status = main(["train-unet", "--dataset", "jtsc", "--out", str(tmp_path / "run"),
                   "--profile", "smoke"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err
    assert str(cache / "segmentation_WBC") in err


def test_a_server_error_is_named_in_one_line(cache, monkeypatch):
    import requests

    def retrieve(url, *args, **kwargs):
        raise requests.HTTPError(f"404 Client Error: Not Found for url: {url}")

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    with pytest.raises(DownloadError, match=r"HTTPError: 404 Client Error.*; without network, put"):
        fetch("jtsc", progressbar=False)


def test_sets_without_a_download_say_how_to_get_them_in_one_line(cache):
    for name, hint in [("all_idb2", "ALL-IDB authors"), ("bloodseg", "SMC_IDB")]:
        with pytest.raises(DatasetError, match=f"needs a root folder.*{hint}") as info:
            load_dataset(name, None)
        assert "\n" not in str(info.value)
    with pytest.raises(DownloadError, match="no public download"):
        fetch("all_idb2")


# ----------------------------------------------------------------------------- download


def test_fetch_downloads_unpacks_checks_and_keeps_the_licence(cache, published, github):
    root = fetch("jtsc")
    assert root == cache / "segmentation_WBC"
    assert len(github) == 1 and github[0]["progressbar"] is True
    assert github[0]["url"].startswith("https://github.com/zxaoyou/segmentation_WBC/archive/")
    assert snapshot(root) == snapshot(published)  # LICENSE beside the data
    assert sorted(p.name for p in cache.iterdir()) == ["segmentation_WBC"]  # no archive left
    assert len(load_dataset("jtsc")) == 2 and len(github) == 1  # then a cache hit


def test_download_into_a_folder_never_overwrites_the_user_s_files(tmp_path, published, github):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    assert download("jtsc", dest) == dest
    assert (dest / "notes.txt").read_text() == "mine"
    assert snapshot(dest / "Dataset 1") == snapshot(published / "Dataset 1")

    other = tmp_path / "other"
    other.mkdir()
    (other / "LICENSE").write_text("my own licence file")
    with pytest.raises(DatasetError, match=r"other/LICENSE: differs from the published file"):
        download("jtsc", other)  # added what was missing, kept (and reported) the user's file
    assert (other / "LICENSE").read_text() == "my own licence file"


# ----------------------------------------------------------------------------- checks


def test_a_changed_file_in_the_cache_is_named_and_kept(prepared, no_download):
    changed = prepared / "Dataset 1" / "002.png"
    changed.write_bytes(changed.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DatasetError) as info:
        load_dataset("jtsc")
    message = str(info.value)
    assert message.startswith(f"{changed}: differs from the published file") and "\n" not in message
    assert f"remove {prepared} to fetch it again" in message
    assert changed.read_bytes().endswith(b"\x00")  # reported, not replaced


def test_a_missing_or_extra_file_in_the_cache_is_named(prepared, no_download):
    (prepared / "Dataset 1" / "003.bmp").write_bytes(b"BM")
    with pytest.raises(DatasetError, match=r"003\.bmp: not a file of the published set"):
        fetch("jtsc")
    (prepared / "Dataset 1" / "003.bmp").unlink()
    (prepared / "Dataset 1" / "001.bmp").unlink()
    with pytest.raises(DatasetError, match=r"Dataset 1/001\.bmp: missing"):
        fetch("jtsc")


def test_cellavision_is_checked_by_counts_only(tmp_path):
    assert not (Path(dl.__file__).with_name("manifests") / "cellavision.csv").exists()
    root = make_repo(tmp_path / "repo", number=2, n=3)
    with pytest.raises(DatasetError, match=r"Dataset 2: 3 \.bmp files, 100 published"):
        verify("cellavision", root)


@pytest.mark.shared
def test_the_shipped_manifest_matches_dataset_1_as_published(jtsc_root, monkeypatch, no_download):
    assert verify("jtsc", jtsc_root) == jtsc_root
    # A copy of the repository put in the cache by hand is used as it is.
    monkeypatch.setenv("LEUKOLIB_DATA", str(jtsc_root.parent))
    assert jtsc_root.name == "segmentation_WBC"
    assert len(load_dataset("jtsc")) == 300
