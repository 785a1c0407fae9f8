"""record_trace on tiny torch models, and the lazy torch import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from idnbandit.errors import ConfigError, DependencyNotInstalled, TraceError
from idnbandit.traces import record_trace


def test_import_does_not_import_torch():
    code = ("import sys, idnbandit.traces, idnbandit.traces.record, idnbandit.traces.build; "
            "print('torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_torch_raises_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(DependencyNotInstalled, match=r"idnbandit\[torch\]"):
        record_trace([lambda x: x], np.zeros((2, 3)), [0, 1])


@pytest.mark.torch
def test_records_softmax_in_eval_mode_and_restores_training():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3)
    drop = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.Dropout(0.9))
    drop.train()
    x = torch.randn(37, 5)
    y = np.arange(37) % 3
    t = record_trace([lin, drop], x, y, model_names=["lin", "drop"], batch_size=8)
    assert t.model_names == ("lin", "drop") and t.probs.shape == (2, 37, 3)
    with torch.no_grad():
        expected = torch.softmax(lin(x), dim=1).numpy()
        expected_drop = torch.softmax(drop.eval()(x), dim=1).numpy()
    np.testing.assert_allclose(t.probs[0], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t.probs[1], expected_drop, rtol=1e-5, atol=1e-7)  # dropout was off
    drop.train()
    t2 = record_trace({"lin": lin, "drop": drop}, x.numpy().astype(np.float64), y, batch_size=1000)
    assert drop.training  # training mode restored
    np.testing.assert_allclose(t2.probs, t.probs, rtol=1e-5, atol=1e-7)  # batching does not matter
    assert t2.metadata["accuracies"] == pytest.approx(list(t.accuracies()))


@pytest.mark.torch
def test_record_errors():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(4, 3)
    x = torch.zeros(6, 4)
    with pytest.raises(ConfigError, match="model_names"):
        record_trace([lin], x, [0] * 6, model_names=["a", "b"])
    with pytest.raises(ConfigError, match="labels"):
        record_trace([lin], x, [0] * 5)
    with pytest.raises(ConfigError, match="batch_size"):
        record_trace([lin], x, [0] * 6, batch_size=0)
    with pytest.raises(ConfigError, match="models"):
        record_trace([], x, [0] * 6)
    with pytest.raises(TraceError, match=r"labels: values must lie in \[0, 3\)"):
        record_trace([lin], x, [3] * 6)
    with pytest.raises(TraceError, match="classes"):
        record_trace([lin, torch.nn.Linear(4, 5)], x, [0] * 6)
    with pytest.raises(TraceError, match="logits"):
        record_trace([torch.nn.Flatten(0)], x, [0] * 6)
    with pytest.raises(TraceError, match="NaN"):
        record_trace([lambda b: torch.full((len(b), 3), float("nan"))], x, [0] * 6)


def test_build_script_help_runs():
    out = subprocess.run([sys.executable, "-m", "idnbandit.traces.build", "--help"],
                         capture_output=True, text=True, check=True)
    assert "--out" in out.stdout and "--seed" in out.stdout
