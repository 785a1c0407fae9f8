"""idnbandit.ope against Open Bandit Pipeline, where OBP is installed (it is not a dependency:
benchmarks/ope_vs_obp.py says how to install it; measured agreement is in docs/ope.md)."""

import pytest


def test_estimates_agree_with_open_bandit_pipeline(script_module):
    pytest.importorskip("obp")
    assert script_module("benchmarks/ope_vs_obp.py").main() == 0
