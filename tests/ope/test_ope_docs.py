"""The Python example of docs/ope.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "ope.md"


def test_docs_python_blocks_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pyarrow")
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs_ope"})
    out = capsys.readouterr().out
    assert "dr " in out and "ips " in out
    assert "RESULTS_PLACEHOLDER" not in DOC.read_text(), "docs/ope.md still lacks its results table"
