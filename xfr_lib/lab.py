"""The chapters as live notebooks for a workshop: ``xfr lab``.

:func:`prepare_lab` writes a scratch copy of the chapters as ``.ipynb`` notebooks into a
folder of the participant's (``./xfr-lab`` by default), so that the originals in
``notebooks/`` are never edited; each chapter saves its figures and tables into
``out/<chapter>/`` of that folder. A notebook already there is kept, edits and all, unless
``fresh`` is asked for. :func:`lab_command` is the JupyterLab command that opens them, with
nothing fetched from the internet (no update check, no news feed), so that it works in a
classroom without a network. The widgets of chapter 13 work there through ``ipywidgets`` and
its JupyterLab extension, both installed with xfr; JupyterLab itself is the optional extra
``xfr-lib[lab]`` (in ``requirements.txt``, so ``make setup`` installs it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from xfr_lib._io import atomic_write_text
from xfr_lib.errors import XfrError
from xfr_lib.runner import OUT_PARAM, list_chapters, parameters_cell, read_notebook, resolve_chapter

__all__ = ["DEFAULT_LAB_DIR", "lab_command", "prepare_lab"]

#: Where ``xfr lab`` writes its scratch copy, relative to the current directory.
DEFAULT_LAB_DIR = "xfr-lab"
# JupyterLab settings that keep it from reaching for the internet.
_OFFLINE = ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None", "--LabApp.extension_manager=readonly"]


def prepare_lab(folder: str | Path = DEFAULT_LAB_DIR, chapters: list[str | int] | None = None,
                fresh: bool = False) -> list[tuple[Path, str]]:
    """Write the scratch copy of ``chapters`` (all by default) into ``folder``.

    Returns:
        ``(notebook, "written" | "kept")`` per chapter, in book order.

    Raises:
        UnknownNameError: a chapter that does not exist (before anything is written).
    """
    import nbformat

    names = sorted({resolve_chapter(c) for c in chapters} if chapters else list_chapters())
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for name in names:
        path = folder / f"{name}.ipynb"
        if path.exists() and not fresh:
            done.append((path, "kept"))
            continue
        nb = read_notebook(name)
        cell = parameters_cell(nb, where=name)
        # Each chapter's outputs in a folder of its own, inside the scratch copy.
        cell.source = re.sub(rf'^({OUT_PARAM}\s*=\s*)"[^"\n]*"', rf'\1"out/{name}"',
                             cell.source, count=1, flags=re.MULTILINE)
        atomic_write_text(path, nbformat.writes(nb))
        done.append((path, "written"))
    return done


def lab_command(folder: str | Path, open_path: str | Path | None = None, port: int | None = None,
                browser: bool = True, extra: list[str] | None = None) -> list[str]:
    """The JupyterLab command serving ``folder`` (opening ``open_path`` in it, if given).

    Raises:
        XfrError: JupyterLab is not installed (the message says how to install it).
    """
    if importlib.util.find_spec("jupyterlab") is None:
        raise XfrError("xfr lab needs JupyterLab: pip install 'xfr-lib[lab]' (make setup "
                       "installs it), or open the .ipynb files of the folder in any Jupyter")
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(folder).resolve()}",
           *_OFFLINE]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # a container's user is often root; JupyterLab refuses it
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if not browser:
        cmd.append("--no-browser")
    cmd += list(extra or [])
    if open_path is not None:
        cmd.append(str(Path(open_path).resolve()))
    return cmd
