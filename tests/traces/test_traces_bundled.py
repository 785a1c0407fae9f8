"""The bundled real traces: present, well-formed, honest ladders monotone in accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.errors import UnknownNameError
from idnbandit.traces import builtin_trace_names, ece, load_builtin_trace
from idnbandit.traces.bundled import DATA_DIR

LADDERS = {
    "digits": (("logreg-4x4", "mlp-16", "cnn-small", "cnn-wide"), 1797, 10),
    "segment": (("logreg-2f", "mlp-4", "mlp-32", "mlp-128x2"), 2310, 7),
}


def test_names():
    assert builtin_trace_names() == ["digits", "ensemble-hetero", "segment"]


@pytest.mark.parametrize("name", sorted(LADDERS))
def test_ladder_is_strictly_monotone_and_documented(name):
    models, n, c = LADDERS[name]
    t = load_builtin_trace(name)
    assert t.model_names == models
    assert (t.n_samples, t.n_classes) == (n, c)
    acc = t.accuracies()
    assert (np.diff(acc) > 0).all(), acc
    assert acc[0] < acc[-1] - 0.05  # the device model is clearly weaker: offloading is worthwhile
    assert acc[-1] > 0.95
    # every class is present (stratified folds cover the whole data set)
    assert set(np.unique(t.labels)) == set(range(c))
    meta = t.metadata["models"]
    assert set(meta) == set(models)  # keyed by name (JSON keys are sorted); ladder order = model_names
    e = ece(t.probs, t.labels)
    for m, name_m in enumerate(models):
        assert meta[name_m]["accuracy"] == pytest.approx(acc[m], abs=1e-9)
        assert meta[name_m]["ece_15_bins"] == pytest.approx(e[m], abs=1e-6)
        assert meta[name_m]["gflops"] > 0 and meta[name_m]["architecture"] and meta[name_m]["training"]
    gflops = [meta[m]["gflops"] for m in models]
    assert gflops[0] < gflops[-1]
    assert "out-of-fold" in t.metadata["protocol"]


@pytest.mark.parametrize("name", sorted(LADDERS))
def test_confidence_carries_information(name):
    t = load_builtin_trace(name)
    ok = t.correct()
    for m in range(t.n_models):
        conf = t.probs[m].max(axis=1)
        if (~ok[m]).sum() >= 10:
            assert conf[ok[m]].mean() > conf[~ok[m]].mean()


def test_files_are_small_and_cached():
    for p in DATA_DIR.glob("*.npz"):
        assert p.stat().st_size < 1_000_000, p
    assert load_builtin_trace("digits") is load_builtin_trace("digits")
    assert not load_builtin_trace("digits").probs.flags.writeable


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'digits'"):
        load_builtin_trace("digit")
