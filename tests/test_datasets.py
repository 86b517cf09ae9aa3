"""Datasets: the packaged ones load with the right counts, labels and metadata; user folders
load by the documented rules; bad input gives one-line errors."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xfr_lib.data import (
    FaceDataset,
    FaceImage,
    check_disjoint,
    list_datasets,
    load_dataset,
    natural_key,
    read_image_folder,
)
from xfr_lib.errors import DatasetError, UnknownNameError, XfrError


def _jpeg(path: Path, seed: int, size: int = 24) -> Path:
    """A real, small JPEG of random pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG" if path.suffix.lower() in {".jpg", ".jpeg"}
                                 else None)
    return path


@pytest.fixture(scope="module")
def orl() -> FaceDataset:
    return load_dataset("orl")


def test_list_datasets():
    assert list_datasets() == ["calfw", "cplfw", "folder", "lfw", "orl", "radar", "wild"]


def test_orl_has_400_images_of_40_people_in_natural_order(orl):
    assert len(orl) == 400
    assert orl.identities == [f"s{k}" for k in range(1, 41)]
    assert all(len(orl.indices_of(p)) == 10 for p in orl.identities)
    assert all(im.path.suffix == ".pgm" and im.path.is_file() for im in orl)
    assert not any(im.path.name == "target.jpg" for im in orl)  # the stray file is ignored
    # deterministic order: s1/1.pgm .. s1/10.pgm, then s2 ...
    assert [im.path.name for im in orl[:10]] == [f"{n}.pgm" for n in range(1, 11)]
    assert [orl[i].identity for i in (0, 9, 10, 399)] == ["s1", "s1", "s2", "s40"]
    assert all(im.identity == im.path.parent.name for im in orl)
    assert "Samaria" in orl.citation and orl.licence
    assert list(orl.labels[:11]) == [0] * 10 + [1]


def test_orl_loads_identically_twice(orl):
    again = load_dataset("orl")
    assert [im.path for im in again] == [im.path for im in orl]


def test_wild_identities_and_per_image_credits():
    wild = load_dataset("wild")
    assert wild.identities == ["Barack Obama", "Emmanuel Macron", "Jacinda Ardern", "Joe Biden",
                               "Rishi Sunak", "Tom Hanks"]
    assert len(wild) == 11 and len(wild.indices_of("Barack Obama")) == 4
    assert all(im.path.is_file() and im.meta["licence"] and im.meta["credit"] for im in wild)
    ardern = [wild[i] for i in wild.indices_of("Jacinda Ardern")]
    assert [im.meta["licence"] for im in ardern] == ["CC BY-SA 4.0", "Public domain"]
    assert "Newzild" in ardern[0].meta["credit"]
    assert wild[wild.indices_of("Tom Hanks")[0]].path.suffix == ".png"


def test_radar_is_609_people_with_one_photo_and_politico_metadata():
    radar = load_dataset("radar")
    assert len(radar) == 609 and len(radar.identities) == 609
    assert all(unicodedata.is_normalized("NFC", i) for i in radar.identities)
    assert all(im.path.is_file() and im.identity == unicodedata.normalize("NFC", im.path.stem)
               for im in radar)
    frame = radar.to_frame()
    assert (frame["politico_match"] == "Apelido").sum() == 603
    assert frame["politico_match"].isna().sum() == 6
    row = frame.set_index("identity").loc["Abou Anni"]
    assert row["full_name"] == "Paulo Sergio Abou Anni" and row["party"] == "PSL"
    assert row["office"] == "Deputado" and row["state"] == "SP"
    # matched case-insensitively; trailing blanks of the csv's Cargo are stripped
    assert frame.set_index("identity").loc["MARCUS PESTANA", "politico_match"] == "Apelido"
    assert not frame["office"].dropna().str.endswith(" ").any()


def test_folder_dataset_rules(tmp_path):
    root = tmp_path / "mine"
    _jpeg(root / "bob" / "b2.jpg", 1)
    _jpeg(root / "bob" / "b10.JPG", 2)  # upper-case extension counts
    _jpeg(root / "alice" / "a1.png", 3)
    _jpeg(root / "alice" / "a.webp", 4)
    (root / "alice" / "notes.txt").write_text("not an image")
    _jpeg(root / "alice" / ".hidden.jpg", 5)
    _jpeg(root / "alice" / "deeper" / "x.jpg", 6)  # deeper folders are not read, but counted
    _jpeg(root / "carol.jpg", 7)  # an image directly under root is its own identity
    ds = load_dataset("folder", root=root)
    assert ds.identities == ["alice", "bob", "carol"]
    assert [(im.identity, im.path.name) for im in ds] == [
        ("alice", "a1.png"), ("alice", "a.webp"), ("bob", "b2.jpg"), ("bob", "b10.JPG"),
        ("carol", "carol.jpg")]
    assert ds.root == root and ds.params["root"] == str(root)
    assert ds.params["left_out_deeper"] == 1
    # The command line's gallery reader is the same function.
    images, deeper = read_image_folder(root)
    assert images == ds.images and deeper == 1
    named = load_dataset("folder", root=root, dataset_name="team", licence="CC0")
    assert named.name == "team" and named.licence == "CC0"


def test_folder_errors_name_the_folder(tmp_path):
    empty = tmp_path / "empty"
    (empty / "carol").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images found in .*empty"):
        load_dataset("folder", root=empty)
    with pytest.raises(DatasetError, match="missing: folder not found"):
        load_dataset("folder", root=tmp_path / "missing")
    with pytest.raises(DatasetError, match="needs root="):
        load_dataset("folder")


def test_unknown_names_and_options():
    with pytest.raises(UnknownNameError, match="unknown dataset 'orll'.*orl"):
        load_dataset("orll")
    with pytest.raises(UnknownNameError, match="variant"):
        load_dataset("orl", variant="funneled")
    with pytest.raises(DatasetError, match="lfw.*root="):
        load_dataset("lfw")
    for name in ("cplfw", "calfw"):
        with pytest.raises(XfrError):
            load_dataset(name)


def test_indices_subset_and_frame(orl):
    assert orl.indices_of("s3") == list(range(20, 30))
    with pytest.raises(UnknownNameError, match="s41"):
        orl.indices_of("s41")
    sub = orl.subset([25, 3, 399])
    assert [im.identity for im in sub] == ["s3", "s1", "s40"]
    assert sub.identities == ["s1", "s3", "s40"] and sub.indices_of("s3") == [0]
    assert sub.params["subset_size"] == 3 and sub.name == "orl"
    with pytest.raises(DatasetError, match="out of range"):
        orl.subset([400])
    frame = orl.to_frame()
    assert len(frame) == 400 and list(frame.columns[:2]) == ["path", "identity"]
    assert frame.loc[10, "identity"] == "s2" and frame.loc[10, "path"].endswith("s2/1.pgm")


def test_face_image_is_frozen_and_hashable():
    a = FaceImage(Path("x/1.jpg"), "x", {"licence": "MIT"})
    b = FaceImage(Path("x/1.jpg"), "x", {"licence": "other"})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.identity = "y"  # type: ignore[misc]


def test_natural_order():
    names = ["s10", "s2", "S1", "s1", "a10b", "a9b"]
    assert sorted(names, key=natural_key) == ["a9b", "a10b", "S1", "s1", "s2", "s10"]


def test_check_disjoint_compares_normalised_names(tmp_path):
    _jpeg(tmp_path / "a" / "Lula" / "1.jpg", 1)
    _jpeg(tmp_path / "b" / "LULA" / "1.jpg", 2)
    _jpeg(tmp_path / "c" / "Dilma" / "1.jpg", 3)
    a, b, c = (load_dataset("folder", root=tmp_path / k, dataset_name=k) for k in "abc")
    with pytest.raises(DatasetError, match="share 1 identity.*'Lula' / 'LULA'"):
        check_disjoint(a, b)
    check_disjoint(a, c)
