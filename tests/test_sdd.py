"""SDD-CAM: the identity classifier (seeded, cached), class maps, SDD and deletion / retention."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_cli import assert_one_line_error

from xfr_lib.classify import IdentityClassifier, LabelledChips, split_per_person, train_classifier
from xfr_lib.data import load_dataset
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import (
    deletion_retention,
    mass_area,
    random_class_maps,
    retention_masks,
    summarise_retention,
)
from xfr_lib.explainers import GradCAM, class_map_layer, class_maps, explain_class, sdd_map
from xfr_lib.faces import chip_to_tensor
from xfr_lib.models import load_model


@pytest.fixture(scope="module")
def dlib():
    return load_model("dlib_resnet29")


@pytest.fixture(scope="module")
def small(dlib):
    """Six ORL people, ten images each: aligned chips for the classifier tests."""
    from xfr_lib.classify import labelled_chips

    orl = load_dataset("orl")
    keep = {f"s{i}" for i in range(1, 7)}
    data = labelled_chips(dlib, orl, progress=False)
    idx = [i for i, p in enumerate(data.identities) if p in keep]
    return LabelledChips(data.chips[idx], [data.identities[i] for i in idx])


@pytest.fixture(scope="module")
def clf(dlib, small):
    return train_classifier(dlib, small, cache=False, progress=False, epochs=10)


# --- SDD on maps with known answers -----------------------------------------------------------

def test_identical_class_maps_cancel_completely():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 20))
    for n in (1, 5):
        out = sdd_map(x, np.stack([x] * n))
        assert out["scale"] == n  # the adaptive F is |S| when every map is the target's
        assert np.abs(out["divergence"]).max() < 1e-5 and out["sdd"].max() == 0.0


def test_sdd_mass_goes_where_the_target_differs():
    rng = np.random.default_rng(1)
    base = rng.random((5, 32, 32))  # five competitors, each with its own spread of evidence
    target = base.mean(axis=0) * 1.0
    target[4:10, 20:28] += 2.0      # the one region only the target has
    out = sdd_map(target, base)
    region = np.zeros((32, 32), bool)
    region[4:10, 20:28] = True
    share = out["sdd"][region].sum() / out["sdd"].sum()
    plain = np.maximum(target, 0)[region].sum() / np.maximum(target, 0).sum()
    assert share > 0.95 and share > plain
    assert mass_area(out["sdd"]) < mass_area(np.maximum(target, 0))  # narrower
    # F and alpha: adaptive within the paper's ranges, or as given.
    assert 5 <= out["scale"] <= 50 and 0.2 <= out["alpha"] <= 0.4
    fixed = sdd_map(target, base, scale=10.0, alpha=0.3)
    assert fixed["scale"] == 10.0 and fixed["alpha"] == 0.3
    # Ranking is by D, so alpha changes the shown map, not the order of pixels.
    other = sdd_map(target, base, scale=10.0, alpha=0.2)
    np.testing.assert_array_equal(fixed["divergence"], other["divergence"])
    assert not np.allclose(fixed["sdd"], other["sdd"])


def test_sdd_map_refuses_mismatched_maps():
    with pytest.raises(XfrError, match="competitor maps"):
        sdd_map(np.ones((4, 4)), np.ones((2, 5, 5)))


# --- the classifier ---------------------------------------------------------------------------

def test_split_keeps_a_training_image_per_person_and_is_seeded():
    ids = ["a"] * 10 + ["b"] * 3 + ["c"]
    train, test = split_per_person(ids, 0.3, seed=0)
    assert sorted([*train, *test]) == list(range(14)) and len(set(train) & set(test)) == 0
    held = [ids[i] for i in test]
    assert held.count("a") == 3 and held.count("b") == 1 and "c" not in held
    assert np.array_equal(test, split_per_person(ids, 0.3, seed=0)[1])
    assert not np.array_equal(test, split_per_person(ids, 0.3, seed=1)[1])


def test_classifier_learns_and_reports_held_out_accuracy(clf, small):
    r = clf.report
    assert r["people"] == 6 and len(r["train"]) == 42 and len(r["test"]) == 18
    assert r["test accuracy"] >= 0.9 and r["loss per epoch"][-1] < r["loss per epoch"][0]
    probs = clf.probabilities(small.chips[r["test"]])
    assert probs.shape == (18, 6) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_training_is_deterministic_under_a_seed(dlib, small, clf):
    again = train_classifier(dlib, small, cache=False, progress=False, epochs=10)
    assert torch.equal(again.weights, clf.weights)
    other = train_classifier(dlib, small, cache=False, progress=False, epochs=10, seed=1)
    assert other.report["test"] != clf.report["test"]
    assert not torch.equal(other.weights, clf.weights)


def test_unchanged_training_reloads_and_a_changed_parameter_retrains(dlib, small, tmp_path):
    first = train_classifier(dlib, small, cache=tmp_path, progress=False, epochs=3)
    (path,) = tmp_path.glob("*.pt")
    stamp = path.stat().st_mtime_ns
    again = train_classifier(dlib, small, cache=tmp_path, progress=False, epochs=3)
    assert not first.report["loaded"] and again.report["loaded"]
    assert path.stat().st_mtime_ns == stamp and torch.equal(again.weights, first.weights)
    changed = train_classifier(dlib, small, cache=tmp_path, progress=False, epochs=4)
    assert not changed.report["loaded"] and len(list(tmp_path.glob("*.pt"))) == 2
    # A damaged cache file is retrained, with a warning, not trusted.
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="unreadable classifier cache"):
        redone = train_classifier(dlib, small, cache=tmp_path, progress=False, epochs=3)
    assert not redone.report["loaded"] and torch.equal(redone.weights, first.weights)


def test_finetuning_the_last_block_trains_a_copy(dlib, small):
    before = dlib.stage5[0].conv1.weight.clone()
    tuned = train_classifier(dlib, small, cache=False, progress=False, epochs=2,
                             finetune="last")
    assert torch.equal(dlib.stage5[0].conv1.weight, before)  # the loaded model is untouched
    assert not torch.equal(tuned.backbone.stage5[0].conv1.weight, before)
    assert torch.equal(tuned.backbone.stage3[0].conv1.weight, dlib.stage3[0].conv1.weight)
    assert not any(p.requires_grad for p in tuned.backbone.parameters())


@pytest.mark.parametrize(("params", "needle"), [
    ({"epochs": 0}, "epochs=0"), ({"finetune": "all"}, "finetune"),
    ({"test_fraction": 1.0}, "test_fraction"), ({"lr_head": 1}, "unknown classifier parameter"),
])
def test_bad_training_parameters_are_refused_in_one_line(dlib, small, params, needle):
    with pytest.raises(XfrError, match=needle):
        train_classifier(dlib, small, cache=False, progress=False, **params)


# --- class maps and SDD on the real model -----------------------------------------------------

def test_class_map_layer_has_useful_resolution(dlib):
    assert class_map_layer(dlib) == "block_17x17"
    assert class_map_layer(load_model("sface")) == "conv_14x14"


def test_class_gradcam_is_the_pair_gradcam_with_the_class_vector(clf, small):
    chip = chip_to_tensor(small.chips[0])
    maps = class_maps(clf, chip, [2], "block_17x17")
    pair = GradCAM(clf.backbone, layer="block_17x17").signed_maps(chip, clf.weights[2:3])
    np.testing.assert_allclose(maps["gradcam"][0], clf.scale * pair.signed[0], rtol=1e-4,
                               atol=1e-6 * np.abs(maps["gradcam"]).max())


def test_two_classes_with_identical_weights_leave_sdd_empty(clf, small):
    # Duplicate class 0's vector as a seventh class: its class map is class 0's, exactly.
    twin = IdentityClassifier(clf.backbone, [*clf.classes, "twin"],
                              torch.cat([clf.weights, clf.weights[:1]]), clf.scale)
    chip = chip_to_tensor(small.chips[0])
    expl = explain_class(twin, chip, clf.classes[0], competitors=1)
    assert expl.competitors == ["twin"]
    assert expl.maps["sdd"].max() == 0.0 and np.abs(expl.maps["divergence"]).max() < 1e-5
    # With a real competitor instead, some of the target's evidence remains.
    real = explain_class(clf, chip, clf.classes[0], competitors=1)
    assert real.maps["sdd"].max() > 0


def test_explain_class_records_everything_and_refuses_bad_input(clf, small):
    chip = chip_to_tensor(small.chips[11])
    expl = explain_class(clf, chip, competitors=3)
    assert expl.predicted == expl.target and len(expl.competitors) == 3
    assert expl.target not in expl.competitors
    probs = [expl.probabilities[c] for c in [expl.target, *expl.competitors]]
    assert probs == sorted(probs, reverse=True)
    assert expl.params["layer"] == "block_17x17" and expl.params["base"] == "hirescam"
    assert expl.competitor_maps["gradcam"].shape == (3, 150, 150)
    record = expl.to_dict()
    assert record["maps"]["sdd"]["top10_mass"] > 0 and record["params"]["scale_used"] >= 3
    with pytest.raises(XfrError, match="'nobody' is not a class"):
        explain_class(clf, chip, "nobody")
    with pytest.raises(XfrError, match="at most 5"):
        explain_class(clf, chip, competitors=6)
    with pytest.raises(XfrError, match="unknown sdd parameter"):
        explain_class(clf, chip, k=3)


# --- deletion and retention -------------------------------------------------------------------

def test_retention_masks_replace_the_complement():
    order = np.arange(100)[::-1]
    dele = retention_masks(order, (10, 10), 0.2, "deletion")
    keep = retention_masks(order, (10, 10), 0.2, "retention")
    assert dele.sum() == 20 and np.array_equal(dele, ~keep) and dele.ravel()[99]


def test_deletion_retention_measures_what_the_maps_point_at(clf, small):
    idx = clf.report["test"][:6]
    chips = small.chips[idx]
    targets = clf.probabilities(chips).argmax(1)
    # A map that ranks the face's centre first against one that ranks the chip's border first.
    yy, xx = np.mgrid[:150, :150]
    centre = -np.hypot(yy - 80, xx - 75)
    maps = {"centre": np.stack([centre] * 6), "border": np.stack([-centre] * 6),
            "random": random_class_maps(6, (17, 17), (150, 150), seed=0)}
    table = deletion_retention(clf, chips, maps, targets, fraction=0.2)
    assert len(table) == 6 * 3 * 2 and table["drop (%)"].between(0, 100).all()
    s = summarise_retention(table).set_index(["map", "mode"])
    assert s.loc[("centre", "deletion"), "drop (%)"] > s.loc[("border", "deletion"), "drop (%)"]
    assert s.loc[("centre", "retention"), "drop (%)"] < s.loc[("border", "retention"), "drop (%)"]
    # Seeded: the same call gives the same table.
    again = deletion_retention(clf, chips, maps, targets, fraction=0.2)
    assert table.equals(again)
    with pytest.raises(XfrError, match="fraction"):
        deletion_retention(clf, chips, maps, targets, fraction=1.0)


def test_random_class_maps_are_seeded_blobs():
    a = random_class_maps(2, (17, 17), (150, 150), seed=3)
    assert a.shape == (2, 150, 150)
    np.testing.assert_array_equal(a, random_class_maps(2, (17, 17), (150, 150), seed=3))
    assert not np.array_equal(a, random_class_maps(2, (17, 17), (150, 150), seed=4))


# --- the command line -------------------------------------------------------------------------

def test_xfr_identify_with_sdd_trains_then_reloads(tmp_path, run, monkeypatch):
    orl = load_dataset("orl")
    for im in orl.images:
        if im.identity in ("s1", "s2", "s3"):
            (tmp_path / "gallery" / im.identity).mkdir(parents=True, exist_ok=True)
            shutil.copy(im.path, tmp_path / "gallery" / im.identity / im.path.name)
    monkeypatch.setenv("XFR_CACHE", str(tmp_path / "cache"))
    probe = str(tmp_path / "gallery" / "s2" / "5.pgm")
    args = ("identify", probe, str(tmp_path / "gallery"), "--method", "sdd", "-p",
            "competitors=2", "--out", str(tmp_path / "out"))
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "classifier: 3 people" in first.stdout and "trained in" in first.stdout
    assert "predicted s2" in first.stdout
    assert (tmp_path / "out" / "class_sdd_s2.png").stat().st_size > 0
    record = json.loads((tmp_path / "out" / "class_sdd_s2.json").read_text())
    assert record["target"] == "s2" and len(record["competitors"]) == 2
    assert 0 < record["maps"]["sdd"]["half-mass area"] <= 0.5
    again = run(*args, "--target", "s3")
    assert "reloaded from the cache" in again.stdout and "explained s3" in again.stdout
    assert_one_line_error(run(*args, "--target", "s9"), "'s9' is not a person", "s1, s2, s3")
    assert_one_line_error(run(*args[:3], "--target", "s3"), "--method sdd")
