"""``python -m mmrec.prepare --help`` names every data set with one line of description."""

from __future__ import annotations

import os
import subprocess
import sys

from mmrec.prepare import DATASETS


def test_help_lists_every_data_set_with_one_line() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "mmrec.prepare", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("data sets")))
    listed = [line.split(maxsplit=1) for line in lines[start + 1 :] if line.strip()]
    assert [name for name, _ in listed] == sorted(DATASETS)
    for name, text in listed:
        words = DATASETS[name].description.split()
        assert text.split()[:3] == words[:3], (name, text)  # the description's opening, on the same line
