"""The evaluation runner: parameter checks before any work, tidy tables, and resuming (also
after kill -9) to the same tables as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from xfr_lib.cli import main as xfr
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import (
    curve_area,
    evaluation_spec,
    load_evaluation_file,
    pair_areas,
    read_evaluation,
    run_evaluation,
)

QUICK = {"methods": ["gradcam", "corrrise"], "models": ["dlib_resnet29"], "dataset": "orl",
         "pairs": 4, "probes": 2, "steps": 4, "bootstrap": 200,
         "metrics": ["deletion", "insertion", "identification-deletion"],
         "method_params": {"corrrise": {"n": 16}}}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    return run_evaluation(evaluation_spec(QUICK), out, progress=False)


def test_tables_are_tidy_and_consistent(quick_run):
    steps, summary = quick_run.steps, quick_run.summary
    # pairs x methods x (2 verification metrics) + probes x methods x 1, each steps + 1 rows
    assert len(steps) == (4 * 2 * 2 + 2 * 2 * 1) * 5
    assert set(steps.columns) >= {"model", "method", "method seed", "task", "metric", "fill",
                                  "kind", "map", "pair", "step", "fraction", "correct"}
    # similarity maps on genuine pairs and probes, dissimilarity maps on impostor pairs
    kinds = steps.groupby("kind")["map"].unique().to_dict()
    assert list(kinds["genuine"]) == ["similarity"] and list(kinds["impostor"]) == ["dissimilarity"]
    assert list(kinds["probe"]) == ["similarity"]
    assert set(steps.loc[steps.method == "gradcam", "method seed"]) == {-1}  # not seeded
    assert set(steps.loc[steps.method == "corrrise", "method seed"]) == {0}
    # the summary's area is the mean of the per-pair areas, inside its interval
    areas = pair_areas(steps)
    for row in summary.itertuples():
        sel = areas[(areas.model == row.model) & (areas.method == row.method)
                    & (areas.task == row.task) & (areas.metric == row.metric)
                    & (areas["map"] == row.map)]
        assert row.pairs == len(sel)
        assert row.area == pytest.approx(sel.area.mean())
        if row.pairs > 1 and sel.area.nunique() > 1:
            assert row.low <= row.area <= row.high
    one = steps[steps.pair == steps.pair.iloc[0]].query("method == 'gradcam' and metric == 'deletion'")
    assert areas.area.iloc[0] == pytest.approx(curve_area(one.fraction, one.correct.astype(float)))
    run = quick_run.run
    assert run["parameters"]["pairs"] == 4 and run["thresholds"]["dlib_resnet29"] > 0
    assert run["this run"]["computed"]["maps"] == 2 * (4 + 2)


def test_rerun_reads_everything_from_the_cache(quick_run):
    again = run_evaluation(evaluation_spec(QUICK), quick_run.out, progress=False)
    assert again.run["this run"]["computed"] == {"maps": 0, "curves": 0}
    pd.testing.assert_frame_equal(again.steps, quick_run.steps)
    pd.testing.assert_frame_equal(again.summary, quick_run.summary)
    back = read_evaluation(quick_run.out)
    pd.testing.assert_frame_equal(back.summary, quick_run.summary, check_dtype=False)
    assert len(back.steps) == len(quick_run.steps)


def test_changed_setting_recomputes_only_what_it_changes(quick_run, tmp_path):
    # Same maps, another fill: the maps come from the cache, the curves are new.
    import shutil

    shutil.copytree(quick_run.out / "cache", tmp_path / "cache")
    spec = evaluation_spec({**QUICK, "fills": ["road"]})
    res = run_evaluation(spec, tmp_path, progress=False)
    assert res.run["this run"]["computed"]["maps"] == 0
    assert res.run["this run"]["computed"]["curves"] == 2 * (4 * 2 + 2)


def test_bf16_maps_are_cached_apart_from_fp32(quick_run, tmp_path):
    # The same spec at another precision shares the cache but reads none of its maps: the
    # model's fingerprint, part of every key, includes the precision.
    spec = evaluation_spec({**QUICK, "methods": ["gradcam"], "method_params": {}, "metrics": ["deletion"],
                            "precision": "bf16"})
    res = run_evaluation(spec, tmp_path, progress=False, cache=quick_run.out / "cache")
    assert res.run["this run"]["read from the cache"]["maps"] == 0
    assert res.run["this run"]["computed"]["maps"] == 4


@pytest.mark.parametrize("change, message", [
    ({"methods": ["corrise"]}, "method 'corrise' is unknown; choose from"),
    ({"models": ["arcface"]}, "model 'arcface' is unknown; choose from"),
    ({"dataset": "mnist"}, "dataset 'mnist' is unknown; choose from"),
    ({"metrics": ["auc"]}, "metric 'auc' is unknown; choose from"),
    ({"fills": ["black"]}, "fill 'black' is unknown; choose from"),
    ({"pairs": "many"}, "pairs must be an integer"),
    ({"pairs": 1}, "pairs=1: use 2 or more"),
    ({"steps": 2.5}, "steps must be an integer"),
    ({"colour": "red"}, "unknown field 'colour'; the fields are"),
    ({"images": "all"}, "images 'all' is unknown"),
    ({"threshold": "best"}, "threshold 'best': use model, eer or a number"),
    ({"method_params": {"rise": {"n": 10}}}, "names 'rise', which is not in methods"),
    ({"dataset": "lfw"}, "needs dataset_root"),
    ({"variants": {"gradcam": {"method": "rise"}}}, "variant label 'gradcam' is a method's name"),
    ({"variants": {"x": {"method": "nope"}}}, "variants must map a label to a method"),
    ({"precision": "fp16"}, "precision 'fp16' is unknown; use one of fp32, bf16"),
])
def test_bad_parameters_are_refused_in_one_line(change, message):
    with pytest.raises(XfrError, match=message) as exc:
        evaluation_spec({**QUICK, **change}, "params.yaml")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("params.yaml: ")


def test_bad_method_parameter_is_refused_before_work(tmp_path, capsys):
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({**QUICK, "method_params": {"corrrise": {"n": 1}}}))
    out = tmp_path / "out"
    assert xfr(["evaluate", "-f", str(params), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xfr: error: parameters of corrrise with dlib_resnet29:")
    assert "\n" not in err and not out.exists()
    (tmp_path / "bad.yaml").write_text("methods: [gradcam\n")
    with pytest.raises(XfrError, match="not valid YAML"):
        load_evaluation_file(tmp_path / "bad.yaml")


def test_variants_are_labelled_methods(quick_run, tmp_path):
    import shutil

    shutil.copytree(quick_run.out / "cache", tmp_path / "cache")
    spec = evaluation_spec({**QUICK, "methods": ["corrrise", "corrrise-gauss"],
                            "metrics": ["deletion"],
                            "variants": {"corrrise-gauss": {"method": "corrrise",
                                                            "regularize": "gaussian"}},
                            "method_params": {"corrrise": {"n": 16}, "corrrise-gauss": {"n": 16}}})
    res = run_evaluation(spec, tmp_path, progress=False)
    assert set(res.summary.method) == {"corrrise", "corrrise-gauss"}
    # corrrise's maps come from the first run's cache; the variant's are new
    assert res.run["this run"]["computed"]["maps"] == 4
    assert res.run["this run"]["read from the cache"]["maps"] == 4


def test_distractors_join_the_gallery(quick_run, tmp_path):
    import shutil

    shutil.copytree(quick_run.out / "cache", tmp_path / "cache")
    spec = evaluation_spec({**QUICK, "methods": ["gradcam"], "method_params": {},
                            "metrics": ["identification-deletion"],
                            "distractors": "radar", "n_distractors": 30})
    res = run_evaluation(spec, tmp_path, progress=False)
    assert res.run["this run"]["computed"]["maps"] == 0  # same probes and mates: maps reused
    plain = quick_run.steps.query("method == 'gradcam' and task == 'identification'")
    more = res.steps
    assert len(more) == len(plain)
    # A larger gallery can only raise the best impostor score, never the mate's.
    assert (more["impostor score"].to_numpy() >= plain["impostor score"].to_numpy() - 1e-9).all()
    assert (more["impostor score"].to_numpy() > plain["impostor score"].to_numpy()).any()
    np.testing.assert_allclose(more["mate score"], plain["mate score"], atol=1e-9)
    with pytest.raises(XfrError, match="distractors 'nobody' is unknown"):
        evaluation_spec({**QUICK, "distractors": "nobody"})


def test_cli_flags(tmp_path, capsys):
    out = tmp_path / "cli"
    code = xfr(["evaluate", "--methods", "gradcam,saliency", "--models", "dlib_resnet29",
                "--dataset", "orl", "--pairs", "2", "--steps", "2", "--metrics", "deletion",
                "--format", "parquet", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "gradcam" in printed and "saliency" in printed and "computed 4 maps" in printed
    steps = pd.read_parquet(out / "steps.parquet")
    assert len(steps) == 2 * 2 * 3 and (out / "summary.csv").exists()


def _cli(out: Path, params: Path) -> list[str]:
    return [sys.executable, "-m", "xfr_lib.cli", "evaluate", "-f", str(params), "--out",
            str(out), "--quiet"]


def test_killed_run_resumes_to_the_same_tables(tmp_path):
    # Four wild pairs (11 photos to embed), each map about 400 forward passes: slow enough to
    # be killed after the first map, quick enough to run three times.
    spec = {"methods": ["corrrise"], "models": ["dlib_resnet29"], "dataset": "wild",
            "pairs": 4, "steps": 2, "bootstrap": 100, "fills": ["zero", "road"],
            "method_params": {"corrrise": {"n": 200}}}
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    # Uninterrupted reference.
    subprocess.run(_cli(tmp_path / "ref", params), check=True, env=env, capture_output=True)
    # Killed with SIGKILL once a few maps are on disk, then resumed.
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(out, params), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    maps = out / "cache" / "maps"
    deadline = time.time() + 300
    while time.time() < deadline and not list(maps.glob("*.npz")) and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "summary.csv").exists()
    before = {p.name for p in maps.glob("*.npz")}
    assert 1 <= len(before) < 4
    done = subprocess.run(_cli(out, params), check=True, env=env, capture_output=True, text=True)
    assert f"read {len(before)} maps" in done.stdout
    for name in ("steps.csv", "summary.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(out / name), pd.read_csv(tmp_path / "ref" / name))
    # no temporary file was left behind or read
    assert not list(out.rglob("*.tmp"))
    ref = yaml.safe_load((tmp_path / "ref" / "run.yaml").read_text())
    assert ref["this run"]["computed"]["maps"] == 4
    assert np.isfinite(pd.read_csv(out / "summary.csv").area).all()
