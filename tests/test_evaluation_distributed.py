"""The evaluation runner on a Dask cluster (loopback, real model and data): the same tables as a
sequential run to the last bit, a worker killed mid-run loses nothing finished, models load once
per worker, and a bad cluster or a worker's error is one line."""

from __future__ import annotations

import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import psutil
import pytest
import yaml

from xfr_lib.cli import main as xfr
from xfr_lib.errors import XfrError
from xfr_lib.evaluate import evaluation_spec, extrapolate_runtime, run_evaluation
from xfr_lib.evaluate._distributed import open_cluster, process_model, run_on_cluster
from xfr_lib.models import load_model

SPEC = {"methods": ["gradcam", "corrrise"], "models": ["dlib_resnet29"], "dataset": "orl",
        "pairs": 6, "probes": 2, "steps": 4, "bootstrap": 100,
        "metrics": ["deletion", "insertion", "identification-deletion"],
        "method_params": {"corrrise": {"n": 16}}}
TASKS = 2 * (6 + 2)  # methods x (pairs + probes)


def _children() -> set[int]:
    # multiprocessing's resource tracker serves this process until it exits: not the cluster's.
    return {p.pid for p in psutil.Process().children(recursive=True)
            if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())}


def _gone(pids: set[int]) -> bool:
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)],
                                 timeout=20)
    return not alive


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    return run_evaluation(evaluation_spec(SPEC), tmp_path_factory.mktemp("sequential"),
                          progress=False)


@pytest.fixture(scope="module")
def client():
    before = _children()
    with open_cluster("local:2") as (client, _):
        yield client
        started = _children() - before
    assert started and _gone(started), "the cluster's processes outlived it"


@pytest.mark.slow
def test_cli_workers_runs_end_to_end_and_closes_its_cluster(sequential, tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({**SPEC, "methods": ["gradcam"], "method_params": {}}))
    before = _children()
    assert xfr(["evaluate", "-f", str(params), "--out", str(tmp_path / "out"), "--quiet",
                "--workers", "2"]) == 0
    assert _gone(_children() - before)
    run = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())["this run"]
    assert run["executed"] == "dask cluster (a local cluster started for this run)"
    assert run["workers at the start"] == 2 and run["computed"]["maps"] == 6 + 2
    # Tasks are independent: gradcam's rows are those of the sequential run of both methods.
    steps = pd.read_csv(tmp_path / "out" / "steps.csv")
    expected = pd.read_csv(sequential.out / "steps.csv").query("method == 'gradcam'")
    pd.testing.assert_frame_equal(steps, expected.reset_index(drop=True))


def test_cli_refuses_workers_with_scheduler(capsys):
    with pytest.raises(SystemExit):
        xfr(["evaluate", "--out", "x", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_cluster_run_writes_the_sequential_tables(client, sequential, tmp_path):
    res = run_evaluation(evaluation_spec(SPEC), tmp_path, progress=False, cluster=client)
    pd.testing.assert_frame_equal(res.steps, sequential.steps)
    pd.testing.assert_frame_equal(res.summary, sequential.summary)
    for name in ("steps.csv", "summary.csv"):  # to the last bit
        assert (tmp_path / name).read_bytes() == (sequential.out / name).read_bytes()
    assert sequential.run["this run"]["executed"] == "sequential, in this process"
    done = res.run["this run"]
    assert done["executed"] == "dask cluster (the caller's client)"
    assert done["workers at the start"] == 2 and done["scheduler"] == client.scheduler.address
    assert done["computed"] == sequential.run["this run"]["computed"]
    assert done["computed"]["maps"] == TASKS
    # Each worker process loaded the model once, however many tasks it ran.
    loads = client.run(lambda: process_model.cache_info())
    assert all(info.misses == 1 for info in loads.values())
    assert sum(info.hits + info.misses for info in loads.values()) >= TASKS


@pytest.mark.slow
def test_killed_worker_loses_nothing_finished(client, sequential, tmp_path):
    maps = tmp_path / "cache" / "maps"
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_evaluation, evaluation_spec(SPEC), tmp_path, progress=False,
                              cluster=client)
        deadline = time.time() + 120
        while not list(maps.glob("*.npz")) and not running.done() and time.time() < deadline:
            time.sleep(0.02)
        busy = [address for address, keys in client.processing().items() if keys]
        assert busy and not running.done(), "the run finished before a worker could be killed"
        victim = client.run(os.getpid)[busy[0]]
        os.kill(victim, signal.SIGKILL)
        finished = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in maps.glob("*.npz")}
        res = running.result(timeout=300)
    assert 1 <= len(finished) < TASKS
    # The killed worker's tasks were run again elsewhere: every map, the sequential tables.
    assert len(list(maps.glob("*.npz"))) == TASKS
    pd.testing.assert_frame_equal(res.steps, sequential.steps)
    pd.testing.assert_frame_equal(res.summary, sequential.summary)
    # Nothing finished before the kill was computed again.
    for name, stamp in finished.items():
        path = maps / name
        assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp, name
    done = res.run["this run"]
    assert done["computed"]["maps"] + done["read from the cache"]["maps"] == TASKS
    assert victim not in client.run(os.getpid).values()


@pytest.mark.slow
def test_an_error_on_a_worker_is_the_same_one_line(client):
    # UnknownNameError cannot be rebuilt from its message: it still arrives as one line.
    with pytest.raises(XfrError, match=r"^unknown model 'arcface'; choose one of") as exc:
        run_on_cluster(client, load_model, [("arcface",)])
    assert "\n" not in str(exc.value)
    with pytest.raises(XfrError, match=r"has other weights for dlib_resnet29 .* run xfr fetch"):
        run_on_cluster(client, process_model, [("dlib_resnet29", "cpu", "fp32", "0" * 16)])


@pytest.mark.parametrize("cluster", ["local", "local:0", "local:two", "tcp://127.0.0.1",
                                     "127.0.0.1:8786", "dask", 4])
def test_malformed_cluster_is_refused_before_any_work(cluster, tmp_path):
    start = time.perf_counter()
    with pytest.raises(XfrError, match=r"use local:N .* tcp://HOST:PORT") as exc:
        run_evaluation(evaluation_spec(SPEC), tmp_path / "out", progress=False, cluster=cluster)
    assert "\n" not in str(exc.value) and not (tmp_path / "out").exists()
    assert time.perf_counter() - start < 5


def test_unreachable_scheduler_is_one_line_quickly():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    start = time.perf_counter()
    with pytest.raises(XfrError, match=f"no Dask scheduler answered at {address} within 1 s; "
                                       "start one") as exc, open_cluster(address, 1.0):
        pass
    assert "\n" not in str(exc.value) and time.perf_counter() - start < 10


def test_extrapolated_runtime_scales_with_pairs_workers_and_efficiency():
    one = extrapolate_runtime(2.0, 3000)
    assert one == 6000.0
    assert extrapolate_runtime(2.0, 3000, workers=4, efficiency=1.0) == one / 4
    assert extrapolate_runtime(2.0, 3000, workers=4, efficiency=0.5) == one / 2
    with pytest.raises(XfrError, match="efficiency > 0"):
        extrapolate_runtime(2.0, 3000, workers=2, efficiency=0)
