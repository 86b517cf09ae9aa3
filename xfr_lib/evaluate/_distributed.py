"""Where the evaluation runner's tasks run (this process or a Dask cluster), and how long an
evaluation of another size would take.

    from xfr_lib.evaluate import extrapolate_runtime
    hours = extrapolate_runtime(seconds_per_pair=9.5, pairs=3000, workers=4, efficiency=0.9) / 3600

:func:`open_cluster` turns the runner's ``cluster`` argument into a ``distributed.Client``:
``None`` (no cluster: the tasks run one after the other in this process), ``"local:N"`` (a
``LocalCluster`` of N worker processes on this machine, closed at the end), a scheduler address
``"tcp://host:port"`` (workers started elsewhere with ``dask worker --no-nanny ADDRESS``) or
a ``Client`` the caller owns. :func:`run_on_cluster` runs one function over many argument tuples there and
returns the results in order, with an ``XfrError`` raised on a worker reaching the caller as the
same one line. Models are loaded once per worker process (:func:`process_model`), not per task.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from xfr_lib.errors import XfrError

#: Seconds to wait for a scheduler address to answer (and for it to have a worker).
CONNECT_SECONDS = 10.0

_LOCAL = re.compile(r"local:(\d+)")
_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:]+\]|[^\s:/\[\]]+):\d+")
_USAGE = ("use local:N (N >= 1 worker processes on this machine, --workers N), a scheduler "
          "address tcp://HOST:PORT (--scheduler) or a distributed.Client")


def parse_cluster(cluster: Any) -> tuple[str, Any]:
    """``("sequential", None)``, ``("local", N)``, ``("address", ADDRESS)`` or
    ``("client", CLIENT)``; anything else is refused in one line."""
    if cluster is None:
        return "sequential", None
    if isinstance(cluster, str):
        local = _LOCAL.fullmatch(cluster.strip())
        if local and int(local.group(1)) >= 1:
            return "local", int(local.group(1))
        if _ADDRESS.fullmatch(cluster.strip()):
            return "address", cluster.strip()
        raise XfrError(f"cluster {cluster!r}: {_USAGE}")
    from distributed import Client

    if isinstance(cluster, Client):
        return "client", cluster
    raise XfrError(f"cluster of type {type(cluster).__name__}: {_USAGE}")


@contextmanager
def open_cluster(cluster: Any, connect_seconds: float = CONNECT_SECONDS
                 ) -> Iterator[tuple[Any, dict[str, Any]]]:
    """``(client, how)``: a ``distributed.Client`` (None: run in this process) and how the run
    is executed, as ``run.yaml`` records it. A cluster started here is closed on exit.

    Raises:
        XfrError: a malformed ``cluster``, or a scheduler that does not answer (or has no
            worker) within ``connect_seconds``.
    """
    kind, value = parse_cluster(cluster)
    if kind == "sequential":
        yield None, {"executed": "sequential, in this process"}
        return
    from distributed import Client

    if kind == "client":
        yield value, _how(value, "the caller's client")
        return
    if kind == "local":
        with local_cluster(value) as client:
            yield client, _how(client, "a local cluster started for this run")
        return
    try:
        client = Client(value, timeout=f"{connect_seconds}s")
    except (OSError, TimeoutError):
        raise XfrError(f"no Dask scheduler answered at {value} within {connect_seconds:g} s; "
                       f"start one (dask scheduler) with workers (dask worker --no-nanny "
                       f"{value}), or use --workers N for a cluster on this machine") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=connect_seconds)
        except TimeoutError:
            raise XfrError(f"the Dask scheduler at {value} has no worker; start some with "
                           f"dask worker --no-nanny {value}") from None
        yield client, _how(client, "a running scheduler")


def local_cluster(workers: int) -> Any:
    """A ``distributed.Client`` of a new cluster of ``workers`` processes on this machine
    (loopback only, no dashboard), for several :func:`run_evaluation` calls to share (their
    ``cluster=``): the workers start, and load each model, once. ``client.close()`` (or a
    ``with`` block) stops the workers.

    One thread per worker: the runner computes each task single-threaded (``_TASK_THREADS``
    in the runner), so the cores are used by processes, one per core; more threads per worker
    would only oversubscribe them.
    """
    import dask
    from distributed import Client

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise XfrError(f"local_cluster: workers={workers!r}; use 1 or more worker processes")
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
    # mmap threshold: every large tensor is then mapped and unmapped afresh, and a CorrRISE
    # task ran 1.46x slower than in this process (measured). Workers keep glibc's defaults.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return Client(n_workers=workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None)


def _how(client: Any, started: str) -> dict[str, Any]:
    info = client.scheduler_info()
    return {"executed": f"dask cluster ({started})", "scheduler": info["address"],
            "workers at the start": len(info["workers"])}


def run_on_cluster(client: Any, function: Callable, arguments: Sequence[tuple],
                   on_done: Callable[[], Any] = lambda: None) -> list:
    """``[function(*args) for args in arguments]`` computed by the cluster's workers, in the
    order of ``arguments``; ``on_done()`` is called as each task finishes (a progress bar).

    A worker that dies takes nothing finished with it: Dask runs its unfinished tasks again on
    another worker (up to ``distributed.scheduler.allowed-failures`` deaths per task).

    Raises:
        XfrError: the first task that raised one (the same one line), or a task that killed
            too many workers.
    """
    from distributed import KilledWorker, as_completed

    futures = [client.submit(_call, function, *args, pure=False) for args in arguments]
    order = {future.key: i for i, future in enumerate(futures)}
    results: list = [None] * len(futures)
    try:
        for future in as_completed(futures):
            results[order[future.key]] = future.result()
            on_done()
    except XfrError as exc:
        raise XfrError(str(exc)) from None  # the worker's traceback adds nothing to the line
    except KilledWorker as exc:
        raise XfrError(f"{exc.allowed_failures + 1} workers died while running one task "
                       f"(the last {exc.last_worker.address}); see their logs: a task may "
                       f"need more memory than a worker has (dask worker --memory-limit)"
                       ) from None
    finally:
        client.cancel(futures)
    return results


def _call(function: Callable, *args: Any) -> Any:
    """``function(*args)`` on a worker, with an XfrError re-raised as a plain XfrError: some
    subclasses (UnknownNameError) cannot be rebuilt from their message on the client."""
    try:
        return function(*args)
    except XfrError as exc:
        raise XfrError(str(exc)) from None


@functools.cache
def process_model(name: str, device: str, precision: str, fingerprint: str) -> Any:
    """The model ``name`` on ``device`` at ``precision``, loaded once per process, checked against the
    ``fingerprint`` of the weights the client evaluates (the cache is keyed by it)."""
    from xfr_lib.models import load_model, model_fingerprint

    model = load_model(name, device=device, precision=precision)
    found = model_fingerprint(model)
    if found != fingerprint:
        import socket

        raise XfrError(f"{socket.gethostname()} has other weights for {name} (fingerprint "
                       f"{found}) than the client ({fingerprint}); run xfr fetch {name} there")
    return model


def extrapolate_runtime(seconds_per_pair: float, pairs: int, workers: int = 1,
                        efficiency: float = 1.0) -> float:
    """Wall-clock seconds to evaluate ``pairs`` pairs with ``workers`` parallel workers.

    An extrapolation, not a measurement: ``pairs * seconds_per_pair / (workers * efficiency)``,
    with ``seconds_per_pair`` measured on one worker and the parallel ``efficiency`` (speed-up
    divided by workers) measured on a small run; fixed costs (embedding the dataset, starting
    the workers) are left out. Tasks are independent pairs, so the model assumes the measured
    efficiency holds for more workers and machines sharing the cache folder.
    """
    if not (seconds_per_pair > 0 and pairs >= 1 and workers >= 1 and efficiency > 0):
        raise XfrError(f"extrapolate_runtime: need seconds_per_pair > 0, pairs >= 1, workers "
                       f">= 1 and efficiency > 0, got {seconds_per_pair}, {pairs}, {workers}, "
                       f"{efficiency}")
    return pairs * seconds_per_pair / (workers * efficiency)
