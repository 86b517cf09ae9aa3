"""What several test files share."""

import subprocess

import pytest

#: The front matter of a MyST chapter notebook, for tests that write small chapters.
MYST_HEADER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


@pytest.fixture
def run(capsys):
    """``run(*args)``: ``xfr *args`` in this process, as a CompletedProcess."""
    from xfr_lib.cli import main

    def call(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["xfr", *args], code, out, err)

    return call
