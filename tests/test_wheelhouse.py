"""The offline classroom (tools/wheelhouse.py, ``make setup WHEELHOUSE=DIR``).

The checker is tested on small folders built here; the whole way is tested once for real: the
project's wheelhouse is packed (through the registries, as ``make wheelhouse`` does), then a
fresh virtual environment is set up from it by ``make setup WHEELHOUSE=...`` with the network
cut off (a network namespace of its own when ``unshare -n`` is allowed, else proxies that
lead nowhere, and pip's configuration files ignored, so that no index or local wheel folder
of this machine can stand in for the wheelhouse), and ``xfr explain`` runs there on a bundled
pair.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xfr_lib.data import manifest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import wheelhouse

# --- the checker, on small folders ----------------------------------------------------------


def _folder(tmp_path: Path, wheels: list[str], platform: dict | None = None) -> Path:
    folder = tmp_path / "wh"
    (folder / "wheels").mkdir(parents=True)
    for name in wheels:
        (folder / "wheels" / name).write_bytes(name.encode())
    (folder / "assets").mkdir()
    (folder / "assets" / "models-1.0.tar.gz").write_bytes(b"weights")
    meta = {**wheelhouse.this_platform(), "created": "today", "commit": "0" * 40,
            "wheels": len(wheels), "assets": 1, **(platform or {})}
    (folder / wheelhouse.PLATFORM).write_text(json.dumps(meta))
    _sums(folder)
    return folder


def _sums(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != wheelhouse.SUMS)
    (folder / wheelhouse.SUMS).write_text("".join(
        f"{wheelhouse.sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in files))


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("# pins\ntorch==2.13.0\nPyYAML==6.0.3  # comment\njupyter_server==2.21.1\n")
    return path


WHEELS = ["torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl",
          "pyyaml-6.0.3-cp311-cp311-manylinux_2_17_x86_64.whl",
          "jupyter_server-2.21.1-py3-none-any.whl",
          "setuptools-84.2.1-py3-none-any.whl"]


def test_a_complete_folder_passes_the_check(tmp_path, requirements):
    meta = wheelhouse.check(_folder(tmp_path, WHEELS), requirements)
    assert meta["wheels"] == 4


def test_a_damaged_file_is_named(tmp_path, requirements):
    folder = _folder(tmp_path, WHEELS)
    (folder / "assets" / "models-1.0.tar.gz").write_bytes(b"weightz")
    with pytest.raises(wheelhouse.WheelhouseError, match=r"checksum mismatch for .*models-1\.0"):
        wheelhouse.check(folder, requirements)


def test_missing_and_unlisted_files_are_refused(tmp_path, requirements):
    folder = _folder(tmp_path, WHEELS)
    (folder / "wheels" / WHEELS[1]).unlink()
    with pytest.raises(wheelhouse.WheelhouseError, match="listed in SHA256SUMS but missing"):
        wheelhouse.check(folder, requirements)
    folder = _folder(tmp_path / "b", WHEELS)
    (folder / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises(wheelhouse.WheelhouseError, match="evil-1.0.* is not in SHA256SUMS"):
        wheelhouse.check(folder, requirements)


def test_a_pin_without_its_wheel_is_named(tmp_path, requirements):
    requirements.write_text(requirements.read_text() + "numpy==2.2.6\n")
    with pytest.raises(wheelhouse.WheelhouseError, match=r"no wheel for numpy==2\.2\.6"):
        wheelhouse.check(_folder(tmp_path, WHEELS), requirements)


def test_the_build_backend_is_required_too(tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text("torch==2.13.0\n")
    backend = [r for r in wheelhouse.build_requirements() if "==" in r]
    assert backend, "pyproject.toml's build backend must be pinned exactly for offline installs"
    with pytest.raises(wheelhouse.WheelhouseError, match=f"no wheel for {backend[0]}"):
        wheelhouse.check(_folder(tmp_path, WHEELS[:1]), pins)


def test_wheels_for_another_platform_are_refused(tmp_path, requirements):
    folder = _folder(tmp_path, WHEELS, platform={"platform": "macosx-14-arm64"})
    with pytest.raises(wheelhouse.WheelhouseError, match="wheels for platform macosx-14-arm64"):
        wheelhouse.check(folder, requirements)


def test_a_folder_that_is_no_wheelhouse_is_refused(tmp_path, requirements):
    with pytest.raises(wheelhouse.WheelhouseError, match="not a wheelhouse.*make wheelhouse"):
        wheelhouse.check(tmp_path, requirements)


def test_the_command_line_reports_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "wheelhouse.py"), "check",
                           str(tmp_path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("wheelhouse: error: ")


# --- the whole way, offline ------------------------------------------------------------------


def _offline_prefix() -> list[str]:
    """A network namespace with no interface but loopback, when this user may make one."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True,
                                  check=False).returncode == 0:
        return [unshare, "-n"]
    return []


@pytest.mark.slow
def test_a_fresh_environment_is_set_up_from_the_wheelhouse_with_no_network(tmp_path):
    folder = tmp_path / "wheelhouse"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "wheelhouse.py"), "pack",
                           str(folder)], capture_output=True, text=True, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not folder.with_name("wheelhouse.partial").exists()
    meta = json.loads((folder / "platform.json").read_text())
    assert meta["assets"] == len(manifest()["packages"])

    dead = "http://127.0.0.1:9"  # nothing listens there: any request fails at once
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "XFR_CACHE": str(tmp_path / "cache"),
           "http_proxy": dead, "https_proxy": dead, "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
           "npm_config_proxy": dead, "npm_config_https_proxy": dead}
    env.pop("XFR_ARCHIVES", None)
    venv = tmp_path / "venv"
    offline = _offline_prefix()
    proc = subprocess.run(
        [*offline, "make", "--no-print-directory", "setup", f"WHEELHOUSE={folder}",
         f"VENV={venv}", f"BUILD={tmp_path / 'build'}"],
        capture_output=True, text=True, check=False, cwd=ROOT, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "verified (" in proc.stdout  # the folder was checked before anything was installed
    assert (tmp_path / "build" / "npm" / "node_modules" / "mathjax").is_dir()
    assert not (folder / "npm-cache" / "_logs").exists()  # the folder was only read

    wild = tmp_path / "cache" / "assets" / "wild" / "macron"
    out = tmp_path / "explained"
    proc = subprocess.run(
        [*offline, str(venv / "bin" / "xfr"), "explain", str(wild / "macron_1.jpg"),
         str(wild / "macron_2.jpg"), "--method", "corrrise", "-p", "n=64", "--out", str(out)],
        capture_output=True, text=True, check=False, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((out / "verification_corrrise.json").read_text())
    assert result["params"]["n"] == 64 and result["decision"] is True
    assert (out / "verification_corrrise.png").stat().st_size > 10_000
