"""Protocols: deterministic in the seed, person-disjoint folds, correct labels, no duplicate
pairs, faithful pairs.txt round trips, identification galleries that hold every probe's mate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xfr_lib.data import (
    DEFAULT_GENUINE_PER_FOLD,
    DEFAULT_IMPOSTOR_PER_FOLD,
    PROTOCOL_DIR,
    FaceDataset,
    IdentificationProtocol,
    VerificationProtocol,
    image_numbers,
    load_dataset,
    make_identification_protocol,
    make_verification_protocol,
    read_pairs_txt,
    shipped_protocol,
)
from xfr_lib.errors import DatasetError, UnknownNameError


@pytest.fixture(scope="module")
def orl() -> FaceDataset:
    return load_dataset("orl")


@pytest.fixture(scope="module")
def radar() -> FaceDataset:
    return load_dataset("radar")


def _tiny_jpeg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


def _folder(tmp_path: Path, counts: dict[str, int]) -> FaceDataset:
    for k, (person, n) in enumerate(counts.items()):
        for j in range(n):
            _tiny_jpeg(tmp_path / person / f"photo {j}.jpg", 100 * k + j)
    return load_dataset("folder", root=tmp_path)


def _check_verification(protocol: VerificationProtocol, dataset: FaceDataset) -> None:
    ident = np.array([im.identity for im in dataset.images], dtype=object)
    a, b = protocol.pairs[:, 0], protocol.pairs[:, 1]
    # genuine = same identity and two distinct images; impostor = different identities
    assert (a != b).all()
    assert ((ident[a] == ident[b]) == protocol.labels).all()
    # no unordered pair twice
    assert len({frozenset(p) for p in protocol.pairs.tolist()}) == len(protocol)
    # folds are person-disjoint and each pair lies inside one fold
    people = [set(ident[a[protocol.folds == k]]) | set(ident[b[protocol.folds == k]])
              for k in range(protocol.n_folds)]
    for k in range(protocol.n_folds):
        for m in range(k + 1, protocol.n_folds):
            assert not people[k] & people[m], (k, m)


def test_orl_default_protocol_sizes_and_properties(orl):
    p = make_verification_protocol(orl, seed=0)
    assert (DEFAULT_GENUINE_PER_FOLD, DEFAULT_IMPOSTOR_PER_FOLD) == (30, 30)
    assert len(p) == 600 and p.n_folds == 10 and p.labels.sum() == 300
    for k in range(10):
        idx = p.fold(k)
        assert p.labels[idx].sum() == 30 and (~p.labels[idx]).sum() == 30
        # genuine pairs first within each fold (the pairs.txt order)
        assert p.labels[idx][:30].all() and not p.labels[idx][30:].any()
        assert len(p.params["fold_identities"][k]) == 4
    _check_verification(p, orl)
    p.validate(orl)
    # round-robin genuine pairs: every person of a fold gets 7 or 8 of the 30
    ident = np.array([im.identity for im in orl.images])
    per_person = np.unique(ident[p.pairs[p.labels, 0]], return_counts=True)[1]
    assert per_person.min() >= 7 and per_person.max() <= 8
    # impostor pairs put the person first in natural order first
    imp = p.pairs[~p.labels]
    assert (orl.labels[imp[:, 0]] < orl.labels[imp[:, 1]]).all()
    assert p.params["seed"] == 0 and p.params["dataset_size"] == 400


def test_same_seed_same_protocol_different_seed_different(orl):
    p0, q0 = make_verification_protocol(orl, seed=0), make_verification_protocol(orl, seed=0)
    p1 = make_verification_protocol(orl, seed=1)
    assert np.array_equal(p0.pairs, q0.pairs) and np.array_equal(p0.folds, q0.folds)
    assert p0.params == q0.params
    assert not np.array_equal(p0.pairs, p1.pairs)
    assert p0.params["fold_identities"] != p1.params["fold_identities"]


def test_other_sizes_and_uneven_folds(tmp_path):
    # 7 people of unequal image counts into 3 folds (3/2/2 people)
    ds = _folder(tmp_path, {"ann": 2, "ben": 5, "cy": 3, "dee": 2, "eve": 4, "fay": 3, "gus": 2})
    p = make_verification_protocol(ds, n_folds=3, genuine_per_fold=2, impostor_per_fold=3, seed=4)
    assert len(p) == 15 and sorted(len(g) for g in p.params["fold_identities"]) == [2, 2, 3]
    _check_verification(p, ds)
    # asking for every possible impostor pair of the smallest fold still works (exhaustive draw)
    sizes = [sorted(len(ds.indices_of(x)) for x in g) for g in p.params["fold_identities"]]
    max_imp = min(s[0] * s[1] if len(s) == 2 else 10**9 for s in sizes)
    full = make_verification_protocol(ds, n_folds=3, genuine_per_fold=1,
                                      impostor_per_fold=max_imp, seed=4)
    _check_verification(full, ds)


def test_a_fold_that_cannot_supply_pairs_is_an_error(orl, tmp_path):
    # 4 people x C(10,2) = 180 genuine pairs per ORL fold at most
    make_verification_protocol(orl, genuine_per_fold=180, impostor_per_fold=0)
    with pytest.raises(DatasetError, match="fold 0 .*only 180 genuine pairs, 181 requested"):
        make_verification_protocol(orl, genuine_per_fold=181)
    with pytest.raises(DatasetError, match="only 600 impostor pairs, 601 requested"):
        make_verification_protocol(orl, impostor_per_fold=601)
    with pytest.raises(DatasetError, match="40 identities, fewer than n_folds=41"):
        make_verification_protocol(orl, n_folds=41)
    single = _folder(tmp_path, {"solo": 1, "duo": 2})
    with pytest.raises(DatasetError, match="impostor pairs"):
        make_verification_protocol(single, n_folds=1, genuine_per_fold=1, impostor_per_fold=3)


def test_save_load_round_trip_in_pairs_txt_format(orl, tmp_path):
    p = make_verification_protocol(orl, seed=3)
    path = p.save(tmp_path / "orl_pairs.txt", orl)
    lines = path.read_text().splitlines()
    assert lines[0] == "10\t30" and len(lines) == 601
    first = p.pairs[0]
    a, b = orl[first[0]], orl[first[1]]
    assert lines[1] == f"{a.identity}\t{a.path.stem}\t{b.path.stem}"
    assert len(lines[31].split("\t")) == 4  # first impostor line of fold 1
    q = VerificationProtocol.load(path, orl)
    assert np.array_equal(p.pairs, q.pairs) and np.array_equal(p.labels, q.labels)
    assert np.array_equal(p.folds, q.folds) and q.params == p.params and q.dataset == "orl"
    # without the JSON sidecar, the same pairs are read as a plain LFW pairs file
    bare = read_pairs_txt(path, orl)
    assert np.array_equal(bare.pairs, p.pairs) and bare.params["format"] == "lfw-pairs"
    # a sidecar made for another dataset is refused
    with pytest.raises(DatasetError, match="made for dataset 'orl'"):
        VerificationProtocol.load(path, FaceDataset(name="other", images=orl.images, root=orl.root))


def test_unequal_counts_and_blank_names_round_trip(tmp_path):
    ds = _folder(tmp_path / "imgs", {"Ann Lee": 3, "Bo Ek": 3, "Cy Dom": 3, "Di Fa": 3})
    p = make_verification_protocol(ds, n_folds=2, genuine_per_fold=3, impostor_per_fold=5, seed=1)
    path = p.save(tmp_path / "p.txt", ds)
    text = path.read_text()
    assert text.splitlines()[0] == "2\t3\t5" and "Ann_Lee" in text and "Ann Lee" not in text
    # file names "photo 0.jpg" are not <name>_<NNNN>: numbers are per-identity positions
    assert image_numbers(ds)[:3] == [1, 2, 3]
    q = VerificationProtocol.load(path, ds)
    assert np.array_equal(p.pairs, q.pairs) and np.array_equal(p.folds, q.folds)


def test_lfw_named_files_keep_their_numbers(tmp_path):
    for name, nums in {"Al_Bo": [1, 3], "Cy_Di": [2, 7]}.items():
        for n in nums:
            _tiny_jpeg(tmp_path / name / f"{name}_{n:04d}.jpg", n)
    ds = load_dataset("folder", root=tmp_path)
    assert image_numbers(ds) == [1, 3, 2, 7]


def test_malformed_pairs_files_name_file_and_line(orl, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1\t2\ns1\t1\t2\ns1\t1\tx\ns1\t1\ts2\t1\ns1\t2\ts2\t2\n")
    with pytest.raises(DatasetError, match=r"bad\.txt line 3: .*'x' is not an integer"):
        read_pairs_txt(bad, orl)
    bad.write_text("1\t2\ns1\t1\t2\ns1\t1\ts2\t1\ns1\t1\ts2\t1\ns1\t2\ts2\t2\n")
    with pytest.raises(DatasetError, match=r"bad\.txt line 3: .*expects a genuine line"):
        read_pairs_txt(bad, orl)
    bad.write_text("1\t2\ns1\t1\t2\n")
    with pytest.raises(DatasetError, match="1 folds x \\(2 \\+ 2\\) = 4 pairs but the file has 1"):
        read_pairs_txt(bad, orl)
    bad.write_text("1\t1\ns1\t1\t11\ns1\t1\ts2\t1\n")
    with pytest.raises(DatasetError, match=r"line 2: image s1 #11 .*not in dataset 'orl'"):
        read_pairs_txt(bad, orl)
    bad.write_text("1\t1\ns1\t1\t2\ns1\t1\ts99\t1\n")
    with pytest.raises(DatasetError, match=r"line 3: image s99 #1"):
        read_pairs_txt(bad, orl)
    with pytest.raises(DatasetError, match="not found"):
        read_pairs_txt(tmp_path / "none.txt", orl)


def test_dev_view_single_fold_header(orl, tmp_path):
    path = tmp_path / "pairsDevTest.txt"
    path.write_text("2\ns1\t1\t2\ns2\t3\t10\ns1\t1\ts3\t4\ns5\t2\ts7\t9\n")
    p = read_pairs_txt(path, orl)
    assert p.n_folds == 1 and list(p.labels) == [True, True, False, False]
    assert orl[p.pairs[1, 1]].path.name == "10.pgm" and orl[p.pairs[3, 1]].identity == "s7"


def test_shipped_orl_protocol_matches_the_generator(orl):
    shipped = shipped_protocol("orl", orl)
    fresh = make_verification_protocol(orl, seed=0)
    assert np.array_equal(shipped.pairs, fresh.pairs) and np.array_equal(shipped.folds, fresh.folds)
    assert shipped.params == fresh.params
    assert (PROTOCOL_DIR / "orl_pairs.txt").read_text().startswith("10\t30\n")
    with pytest.raises(UnknownNameError):
        shipped_protocol("lfw")


# --- identification -------------------------------------------------------------------------------

def test_identification_gallery_holds_every_probe_mate(orl):
    p = make_identification_protocol(orl, gallery_per_identity=2, seed=0)
    assert len(p.gallery) == 80 and len(p.probes) == 320
    assert not set(p.gallery.tolist()) & set(p.probes.tolist())
    assert sorted(p.gallery.tolist() + p.probes.tolist()) == list(range(400))
    gallery_ids = p.gallery_identities(orl)
    assert all(gallery_ids.count(i) == 2 for i in orl.identities)
    assert p.true_match(orl).sum(axis=1).tolist() == [2] * 320
    assert p.params == {"kind": "identification", "gallery_per_identity": 2, "seed": 0,
                        "dataset_size": 400, "n_identities": 40}


def test_identification_is_seeded(orl):
    a = make_identification_protocol(orl, seed=0)
    b = make_identification_protocol(orl, seed=0)
    c = make_identification_protocol(orl, seed=1)
    assert np.array_equal(a.gallery, b.gallery) and np.array_equal(a.probes, b.probes)
    assert not np.array_equal(a.gallery, c.gallery)


def test_single_image_identities_go_to_the_gallery():
    wild = load_dataset("wild")
    p = make_identification_protocol(wild, seed=0)
    gallery_ids = p.gallery_identities(wild)
    assert sorted(gallery_ids) == sorted(wild.identities)  # one each
    probes = p.probe_identities(wild)
    assert sorted(set(probes)) == ["Barack Obama", "Emmanuel Macron", "Jacinda Ardern"]
    assert "Joe Biden" not in probes and len(probes) == 3 + 1 + 1
    assert set(probes) <= set(gallery_ids)


def test_distractors_are_appended_and_checked(orl, radar, tmp_path):
    p = make_identification_protocol(orl, seed=0, distractors=radar)
    gallery = p.gallery_images(orl)
    assert len(gallery) == 40 + 609 and gallery[40:] == radar.images
    assert p.params["distractors"] == "radar" and p.params["n_distractors"] == 609
    assert set(p.probe_identities(orl)) <= set(p.gallery_identities(orl)[:40])
    assert p.true_match(orl)[:, 40:].sum() == 0  # distractors are nobody's mate
    some = make_identification_protocol(orl, seed=0, distractors=radar, n_distractors=50)
    again = make_identification_protocol(orl, seed=0, distractors=radar, n_distractors=50)
    assert len(some.distractors) == 50 and some.distractors == again.distractors
    assert len(set(some.distractors)) == 50
    # a distractor who is also in the dataset is refused
    with pytest.raises(DatasetError, match="share 3 identities"):
        make_identification_protocol(orl, distractors=orl.subset(range(30)))
    clash = _folder(tmp_path, {"S1": 1, "stranger": 1})
    with pytest.raises(DatasetError, match="'s1' / 'S1'"):
        make_identification_protocol(orl, distractors=clash)


def test_identification_save_load(orl, radar, tmp_path):
    p = make_identification_protocol(orl, gallery_per_identity=3, seed=5, distractors=radar,
                                     n_distractors=10)
    path = p.save(tmp_path / "ident.json", orl)
    q = IdentificationProtocol.load(path, orl)
    assert np.array_equal(p.gallery, q.gallery) and np.array_equal(p.probes, q.probes)
    assert q.distractors == p.distractors and q.params == p.params
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="not an identification protocol file"):
        IdentificationProtocol.load(path, orl)
