"""benchmarks/agents_vs_peers.py end to end on a tiny stream (ours only; the peers are optional)."""

from __future__ import annotations

import numpy as np


def test_stream(script_module):
    bench = script_module("benchmarks/agents_vs_peers.py")
    X, R, means = bench.make_stream(3000, 0)
    assert X.shape == (3000, bench.D) and R.shape == means.shape == (3000, bench.K)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    assert set(np.unique(R)) <= {0.0, 1.0} and np.all((means >= 0.0) & (means <= 1.0))


def test_main_prints_every_row_and_the_targets_line(script_module, capsys):
    bench = script_module("benchmarks/agents_vs_peers.py")
    bench.main(["--fused-steps", "3000", "--step-steps", "500", "--river-steps", "50", "--vw-steps", "50",
                "--vw-file-steps", "100", "--repeats", "2", "--no-peers"])
    out = capsys.readouterr().out
    for row in ("ours-fused ", "ours-step", "numba-inline ", "median of 2:", "best of 2:",
                "at the anchor's machine speed: ours-fused / numba-inline = "):
        assert row in out


def test_inline_reference_plays_like_ours(script_module):
    """The machine-speed reference makes LinUCB's decisions: same mean reward as ours on one stream."""
    bench = script_module("benchmarks/agents_vs_peers.py")
    X, R, _ = bench.make_stream(4000, 1)
    (_, _), ours = bench.bench_fused(X, R)
    (_, _), inline = bench.bench_inline(X, R)
    assert abs(ours - inline) < 0.005, (ours, inline)
