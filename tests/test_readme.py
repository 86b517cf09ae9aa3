"""The README's Python snippet runs as a newcomer would paste it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippets_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no Python snippet"
    for code in blocks:
        code = code.replace("n=500", "n=40")  # the same call, fewer masks for the test's sake
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "True (150, 150)" in proc.stdout  # Macron's two photos match; maps at chip size
