"""benchmarks/agents_vs_peers.py end to end on a tiny stream (ours only; the peers are optional)."""

from __future__ import annotations

import numpy as np


def test_streams_and_the_scored_options_count(script_module):
    bench = script_module("benchmarks/agents_vs_peers.py")
    X, R, means = bench.make_stream(3000, 0)
    assert X.shape == (3000, bench.D) and R.shape == means.shape == (3000, bench.K)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0)
    Xc, Rc, mc = bench.make_stream(3000, 0, close=True)
    assert np.array_equal(mc, np.repeat(mc[:, :1], bench.K, axis=1))  # every option the same mean
    spread = np.abs(Xc).mean(axis=0)
    assert spread[0] > 20 * spread[-1]  # feature scales spanning a factor 100
    separated, close = bench.scored_per_decision(X, R), bench.scored_per_decision(Xc, Rc)
    assert 1.0 <= separated < 2.0 and separated < close <= bench.K


def test_main_prints_every_row_and_the_targets_line(script_module, capsys):
    bench = script_module("benchmarks/agents_vs_peers.py")
    bench.main(["--fused-steps", "3000", "--step-steps", "500", "--river-steps", "50", "--vw-steps", "50",
                "--vw-file-steps", "100", "--repeats", "2", "--no-peers"])
    out = capsys.readouterr().out
    for row in ("ours-fused ", "ours-fused-close", "ours-step", "exactly per decision", "best of 2:"):
        assert row in out
    assert "mean reward 0.5" in out.split("ours-fused-close")[1]  # the close stream's options average 0.5
