"""Benchmarks: LFW download (served over HTTP from 127.0.0.1, as by a mirror) with checksum and
safe extraction, LFW pairs files, and CPLFW / CALFW folders, all on tiny trees written in the
official formats."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xfr_lib.data import calfw, cplfw, extract_tar, lfw, lfw_dataset, load_dataset, load_xlfw_pairs
from xfr_lib.errors import AssetError, DatasetError, UnknownNameError

# 4 people; LFW names images <Name>/<Name>_<NNNN>.jpg
PEOPLE = {"Ada_Lovelace": 3, "Alan_Turing": 2, "Grace_Hopper": 1, "Kurt_Godel": 2}
# 2 folds x (2 genuine + 2 impostor), in LFW's pairs.txt layout
PAIRS_TXT = """2\t2
Ada_Lovelace\t1\t2
Ada_Lovelace\t2\t3
Ada_Lovelace\t1\tGrace_Hopper\t1
Alan_Turing\t2\tKurt_Godel\t1
Alan_Turing\t1\t2
Kurt_Godel\t1\t2
Ada_Lovelace\t3\tKurt_Godel\t2
Grace_Hopper\t1\tKurt_Godel\t1
"""


def _jpeg_bytes(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _lfw_archive(path: Path, top: str = "lfw") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for k, (name, n) in enumerate(PEOPLE.items()):
            for j in range(1, n + 1):
                _add(tar, f"{top}/{name}/{name}_{j:04d}.jpg", _jpeg_bytes(10 * k + j))
    return path


class Mirror:
    """Files of ``folder`` served over HTTP on 127.0.0.1; ``requests`` lists the paths asked.

    ``/cut/<name>`` serves ``<name>`` with its full Content-Length but only half its bytes, then
    closes the connection: a transfer interrupted half-way.
    """

    def __init__(self, folder: Path):
        self.folder, self.requests = folder, []
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                if not self.path.startswith("/cut/"):
                    return super().do_GET()
                data = (folder / self.path.removeprefix("/cut/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{name}"

    def source(self, name: str) -> dict:
        """``{"url", "sha256"}`` of a served file, as in the manifest."""
        return {"url": self.url(name), "sha256": _sha(self.folder / name)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A mirror serving lfw.tgz, lfw-funneled.tgz, pairs.txt and pairsDevTest.txt."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # never send the test's requests to a proxy
    remote = tmp_path / "remote"
    remote.mkdir()
    _lfw_archive(remote / "lfw.tgz")
    _lfw_archive(remote / "lfw-funneled.tgz", top="lfw_funneled")
    (remote / "pairs.txt").write_text(PAIRS_TXT)
    dev = "1\nAda_Lovelace\t1\t3\nAlan_Turing\t1\tKurt_Godel\t2\n"
    (remote / "pairsDevTest.txt").write_text(dev)
    served = Mirror(remote)
    yield served
    served.close()


@pytest.fixture
def server(mirror):
    """The mirror's folder and the ``urls`` overrides of download_lfw pointing at it."""
    return mirror.folder, {f.name: mirror.source(f.name) for f in mirror.folder.iterdir()}


def _leftovers(root: Path) -> list[str]:
    """Temporary files and folders (ours start with '.', pooch's with 'tmp')."""
    return sorted(p.name for p in root.iterdir()
                  if p.name.startswith((".", "tmp")) or p.suffix == ".part")


def test_lfw_download_verify_extract_and_parse(tmp_path, server):
    _, urls = server
    root = tmp_path / "data"
    bench = lfw(root, download=True, urls=urls, progress=False)
    assert (root / "lfw.tgz").is_file() and (root / "pairs.txt").is_file()
    assert (root / "lfw" / "Ada_Lovelace" / "Ada_Lovelace_0003.jpg").is_file()
    assert _leftovers(root) == []
    ds, p = bench.dataset, bench.protocol
    assert len(ds) == 8 and ds.identities == sorted(PEOPLE) and ds.name == "lfw"
    assert ds.root == root / "lfw" and "Huang" in ds.citation
    assert len(p) == 8 and p.n_folds == 2 and list(p.folds) == [0] * 4 + [1] * 4
    assert list(p.labels) == [True, True, False, False] * 2
    names = [(ds[a].path.name, ds[b].path.name) for a, b in p.pairs]
    assert names[1] == ("Ada_Lovelace_0002.jpg", "Ada_Lovelace_0003.jpg")
    assert names[7] == ("Grace_Hopper_0001.jpg", "Kurt_Godel_0001.jpg")
    p.validate(ds)
    # all there now: works offline, without download, through load_dataset too
    again = lfw(root)
    assert np.array_equal(again.protocol.pairs, p.pairs)
    assert len(load_dataset("lfw", root=root)) == 8
    # the View 1 file (one fold) on request
    dev = lfw(root, download=True, pairs="pairsDevTest.txt", urls=urls, progress=False)
    assert dev.protocol.n_folds == 1 and list(dev.protocol.labels) == [True, False]


def test_lfw_funneled_variant(tmp_path, server):
    _, urls = server
    ds = lfw_dataset(tmp_path, variant="funneled", download=True, urls=urls, progress=False)
    assert ds.root == tmp_path / "lfw_funneled" and len(ds) == 8
    assert not (tmp_path / "lfw").exists()
    with pytest.raises(UnknownNameError, match="deepfunneled"):
        lfw_dataset(tmp_path, variant="deepfunneled")


def test_checksum_mismatch_keeps_nothing(tmp_path, server):
    _, urls = server
    wrong = {**urls, "lfw.tgz": {**urls["lfw.tgz"], "sha256": "0" * 64}}
    root = tmp_path / "data"
    with pytest.raises(AssetError, match="checksum mismatch for lfw.tgz") as info:
        lfw_dataset(root, download=True, urls=wrong, progress=False)
    assert "\n" not in str(info.value)
    assert not (root / "lfw.tgz").exists() and not (root / "lfw").exists()
    assert _leftovers(root) == []


def test_present_files_are_not_downloaded_again(tmp_path, mirror, server):
    _, urls = server
    root = tmp_path / "data"
    lfw(root, download=True, urls=urls, progress=False)
    assert sorted(mirror.requests) == ["/lfw.tgz", "/pairs.txt"]
    lfw(root, download=True, urls=urls, progress=False)
    # the images gone, the verified archive still there: extracted again, not downloaded
    shutil.rmtree(root / "lfw")
    assert len(lfw_dataset(root, download=True, urls=urls, progress=False)) == 8
    assert len(mirror.requests) == 2
    # a damaged local archive fails its checksum and is downloaded again
    shutil.rmtree(root / "lfw")
    (root / "lfw.tgz").write_bytes(b"damaged")
    assert len(lfw_dataset(root, download=True, urls=urls, progress=False)) == 8
    assert mirror.requests[2:] == ["/lfw.tgz"] and _sha(root / "lfw.tgz") == urls["lfw.tgz"]["sha256"]
    assert _leftovers(root) == []


def test_interrupted_download_keeps_nothing(tmp_path, mirror, server):
    _, urls = server
    cut = {**urls, "lfw.tgz": {**urls["lfw.tgz"], "url": mirror.url("cut/lfw.tgz")}}
    root = tmp_path / "data"
    with pytest.raises(AssetError, match=r"could not download http://127\.0\.0\.1:\d+/cut/lfw") as info:
        lfw_dataset(root, download=True, urls=cut, progress=False)
    assert "\n" not in str(info.value) and mirror.requests == ["/cut/lfw.tgz"]
    assert list(root.iterdir()) == []
    missing = {**urls, "lfw.tgz": {**urls["lfw.tgz"], "url": mirror.url("nowhere/lfw.tgz")}}
    with pytest.raises(AssetError, match="could not download .*404"):
        lfw_dataset(root, download=True, urls=missing, progress=False)
    assert list(root.iterdir()) == []


def test_corrupt_or_unsafe_archive_from_the_mirror_is_not_extracted(tmp_path, mirror):
    remote = mirror.folder
    whole = _lfw_archive(tmp_path / "whole.tgz").read_bytes()
    (remote / "cut.tgz").write_bytes(whole[: len(whole) // 2])  # verified, but truncated
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match=r"could not extract .*data/lfw\.tgz"):
        lfw_dataset(root, download=True, urls={"lfw.tgz": mirror.source("cut.tgz")},
                    progress=False)
    assert not (root / "lfw").exists() and _leftovers(root) == []
    with tarfile.open(remote / "evil.tgz", "w:gz") as tar:
        _add(tar, "lfw/A/A_0001.jpg", _jpeg_bytes(0))
        _add(tar, "lfw/../../evil.txt", b"gotcha")
    (root / "lfw.tgz").unlink()
    with pytest.raises(DatasetError, match="outside the extraction folder"):
        lfw_dataset(root, download=True, urls={"lfw.tgz": mirror.source("evil.tgz")},
                    progress=False)
    assert not (root / "lfw").exists() and _leftovers(root) == []
    assert not (tmp_path / "evil.txt").exists()


def test_interrupted_extraction_leaves_no_half_folder(tmp_path, server, monkeypatch):
    _, urls = server
    root = tmp_path / "data"
    written = []
    makefile = tarfile.TarFile.makefile

    def interrupted(self, tarinfo, targetpath):
        if len(written) == 3:
            raise KeyboardInterrupt
        makefile(self, tarinfo, targetpath)
        written.append(targetpath)

    monkeypatch.setattr(tarfile.TarFile, "makefile", interrupted)
    with pytest.raises(KeyboardInterrupt):
        lfw_dataset(root, download=True, urls=urls, progress=False)
    assert len(written) == 3  # the extraction had started
    assert not (root / "lfw").exists() and _leftovers(root) == []
    monkeypatch.undo()
    assert len(lfw_dataset(root, download=True, urls=urls, progress=False)) == 8


def test_missing_files_say_how_to_get_them(tmp_path, server):
    with pytest.raises(DatasetError, match=r"LFW images not found .*download=True.*lfw\.tgz"):
        lfw(tmp_path)
    _, urls = server
    lfw_dataset(tmp_path, download=True, urls=urls, progress=False)
    with pytest.raises(DatasetError, match=r"pairs file .*pairs\.txt not found.*download"):
        lfw(tmp_path)
    # the real manifest's URL is quoted when no override is given
    with pytest.raises(DatasetError, match="ndownloader.figshare.com/files/5976018"):
        lfw(tmp_path / "elsewhere")


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "lfw/../../evil.txt"])
def test_unsafe_paths_are_refused(tmp_path, member):
    archive = tmp_path / "bad.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "lfw/A/A_0001.jpg", _jpeg_bytes(0))
        _add(tar, member, b"gotcha")
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DatasetError, match="outside the extraction folder"):
        extract_tar(archive, root, "lfw")
    assert list(root.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_links_and_wrong_archives_are_refused(tmp_path):
    archive = tmp_path / "link.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("lfw/A/A_0001.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DatasetError, match="link or special file"):
        extract_tar(archive, root, "lfw")
    other = _lfw_archive(tmp_path / "other.tgz", top="faces")
    with pytest.raises(DatasetError, match="no top folder lfw/"):
        extract_tar(other, root, "lfw")
    (tmp_path / "junk.tgz").write_bytes(b"not a tar file")
    with pytest.raises(DatasetError, match="could not extract"):
        extract_tar(tmp_path / "junk.tgz", root, "lfw")
    assert list(root.iterdir()) == []


# --- CPLFW / CALFW ---------------------------------------------------------------------------

def _xlfw_tree(root: Path, fmt: str, people: dict[str, int]) -> Path:
    images = root / "aligned images"
    images.mkdir(parents=True)
    for k, (name, n) in enumerate(people.items()):
        for j in range(1, n + 1):
            (images / fmt.format(name=name, n=j)).write_bytes(_jpeg_bytes(100 + 10 * k + j))
    return images


XPEOPLE = {"Ann_Bo": 3, "Cy_Du": 2, "Ed_Fa": 2, "Gil_Ho": 1, "Ian_Jo": 2}


def _blocks(fmt: str) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    f = fmt.format
    genuine = [(f(name="Ann_Bo", n=1), f(name="Ann_Bo", n=2), 1),
               (f(name="Cy_Du", n=1), f(name="Cy_Du", n=2), 2),
               (f(name="Ed_Fa", n=1), f(name="Ed_Fa", n=2), 3),
               (f(name="Ann_Bo", n=2), f(name="Ann_Bo", n=3), 1)]
    impostor = [(f(name="Ann_Bo", n=1), f(name="Gil_Ho", n=1), 0),
                (f(name="Cy_Du", n=2), f(name="Ian_Jo", n=1), 0),
                (f(name="Ed_Fa", n=2), f(name="Ian_Jo", n=2), 0),
                (f(name="Gil_Ho", n=1), f(name="Cy_Du", n=1), 0)]
    return genuine, impostor


def _write_pairs(path: Path, pairs: list[tuple[str, str, int]]) -> Path:
    path.write_text("".join(f"{a} {lab}\n{b} {lab}\n" for a, b, lab in pairs))
    return path


def test_cplfw_folder_and_protocol(tmp_path):
    fmt = "{name}_{n}.jpg"  # CPLFW names
    images = _xlfw_tree(tmp_path, fmt, XPEOPLE)
    genuine, impostor = _blocks(fmt)
    # published layout: per fold, its genuine pairs then its impostor pairs
    layout = genuine[:2] + impostor[:2] + genuine[2:] + impostor[2:]
    _write_pairs(tmp_path / "pairs_CPLFW.txt", layout)
    bench = cplfw(tmp_path, n_folds=2)
    ds, p = bench.dataset, bench.protocol
    assert ds.root == images and ds.identities == sorted(XPEOPLE) and len(ds) == 10
    assert ds[ds.indices_of("Ann_Bo")[2]].path.name == "Ann_Bo_3.jpg"
    assert list(p.labels) == [True, True, False, False] * 2
    assert list(p.folds) == [0, 0, 0, 0, 1, 1, 1, 1]  # = consecutive blocks of 4
    assert p.params["label_identity_mismatches"] == 0
    p.validate(ds)
    assert [(ds[a].path.name, ds[b].path.name) for a, b in p.pairs][2] == layout[2][:2]
    assert len(load_dataset("cplfw", root=tmp_path)) == 10


def test_calfw_class_blocked_file_still_gives_balanced_folds(tmp_path):
    fmt = "{name}_{n:04d}.jpg"  # CALFW uses LFW's names
    _xlfw_tree(tmp_path, fmt, XPEOPLE)
    genuine, impostor = _blocks(fmt)
    _write_pairs(tmp_path / "pairs_calfw.txt", genuine + impostor)  # any letter case is found
    p = calfw(tmp_path, n_folds=2).protocol
    assert list(p.labels) == [True] * 4 + [False] * 4
    assert list(p.folds) == [0, 0, 1, 1, 0, 0, 1, 1]
    for k in range(2):
        assert p.labels[p.fold(k)].sum() == 2 and (~p.labels[p.fold(k)]).sum() == 2
    with pytest.raises(DatasetError, match="cannot be split into 3 equal folds"):
        calfw(tmp_path, n_folds=3)


def test_xlfw_errors_name_file_line_and_image(tmp_path):
    fmt = "{name}_{n}.jpg"
    _xlfw_tree(tmp_path, fmt, XPEOPLE)
    ds = load_dataset("cplfw", root=tmp_path)
    path = tmp_path / "pairs_CPLFW.txt"
    path.write_text("Ann_Bo_1.jpg 1\nAnn_Bo_2.jpg 1\nCy_Du_1.jpg\nGil_Ho_1.jpg 0\n")
    with pytest.raises(DatasetError, match=r"CPLFW\.txt line 3: .* expected 'filename label'"):
        load_xlfw_pairs(path, ds)
    path.write_text("Ann_Bo_1.jpg 1\nAnn_Bo_2.jpg one\n")
    with pytest.raises(DatasetError, match=r"line 2: .*'one' is not an integer"):
        load_xlfw_pairs(path, ds)
    path.write_text("Ann_Bo_1.jpg 1\nAnn_Bo_9.jpg 1\n")
    with pytest.raises(DatasetError, match=r"line 2: image 'Ann_Bo_9\.jpg' is not in"):
        load_xlfw_pairs(path, ds)
    path.write_text("Ann_Bo_1.jpg 1\nAnn_Bo_2.jpg 1\nCy_Du_1.jpg 0\n")
    with pytest.raises(DatasetError, match="line 3: the file has an odd number of lines"):
        load_xlfw_pairs(path, ds)
    path.write_text("Ann_Bo_1.jpg 1\nGil_Ho_1.jpg 0\n")
    with pytest.raises(DatasetError, match="lines 1-2: labels 1 and 0 disagree"):
        load_xlfw_pairs(path, ds)
    # a label that contradicts the file names is counted, not hidden
    path.write_text("Ann_Bo_1.jpg 5\nGil_Ho_1.jpg 5\nAnn_Bo_1.jpg 0\nAnn_Bo_2.jpg 0\n")
    p = load_xlfw_pairs(path, ds, n_folds=1)
    assert p.params["label_identity_mismatches"] == 2
    with pytest.raises(DatasetError, match="not found"):
        cplfw(tmp_path, pairs=tmp_path / "nope.txt")
    (tmp_path / "pairs_CPLFW.txt").unlink()
    with pytest.raises(DatasetError, match=r"pairs_CPLFW\.txt not found in"):
        cplfw(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        cplfw(tmp_path / "missing")


def test_xlfw_image_folder_discovery(tmp_path):
    fmt = "{name}_{n}.jpg"
    _xlfw_tree(tmp_path / "a", fmt, {"Ann_Bo": 2})
    _xlfw_tree(tmp_path / "b", fmt, {"Cy_Du": 2})
    both = tmp_path / "both"
    (tmp_path / "a" / "aligned images").rename(both.mkdir() or both / "one")
    (tmp_path / "b" / "aligned images").rename(both / "two")
    with pytest.raises(DatasetError, match="folders with images: one, two.*images="):
        load_dataset("calfw", root=both)
    ds = load_dataset("calfw", root=both, images=both / "two")
    assert ds.identities == ["Cy_Du"]
    (both / "two" / "README.jpg").write_bytes(_jpeg_bytes(1))  # not <Name>_<n>: left out
    assert load_dataset("calfw", root=both, images=both / "two").params["skipped"] == 1
