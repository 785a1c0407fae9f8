"""Record a :class:`Trace` from torch models: the path by which users bring their own models.

torch is imported lazily (``pip install 'idnbandit[torch]'``); importing this module does not
import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, TraceError, require
from .limits import check_trace_size
from .trace import Trace

__all__ = ["record_trace"]


def _model_list(models, model_names) -> tuple[list, tuple[str, ...]]:
    if isinstance(models, Mapping):
        if model_names is not None:
            raise ConfigError("model_names: do not pass model_names when models is a mapping (its keys are the names)")
        names, mods = tuple(str(k) for k in models), list(models.values())
    else:
        is_list = isinstance(models, Sequence) or type(models).__name__ == "ModuleList"
        mods = list(models) if is_list else [models]
        if model_names is None:
            names = tuple(f"model-{i}" for i in range(len(mods)))
        else:
            names = tuple(str(n) for n in model_names)
            if len(names) != len(mods):
                raise ConfigError(f"model_names: {len(names)} names for {len(mods)} models; need one per model")
    if not mods:
        raise ConfigError("models: need at least one model")
    for name, m in zip(names, mods):
        if not callable(m):
            raise ConfigError(f"models[{name!r}]: {type(m).__name__} is not callable (expected a torch.nn.Module)")
    return mods, names


def record_trace(
    models,
    inputs,
    labels,
    model_names: Sequence[str] | None = None,
    batch_size: int = 256,
    *,
    metadata: dict | None = None,
    device: str = "cpu",
) -> Trace:
    """Run torch models on ``inputs`` and record their softmax outputs as a :class:`Trace`.

    Each model is put in eval mode and run without gradients, batch by batch; its logits are
    turned into probabilities with a softmax (in float64, then stored as float32). A model that was
    in training mode is put back in training mode afterwards.

    Parameters
    ----------
    models
        A ``torch.nn.Module`` (or any callable mapping a batch tensor to (B, C) logits), a sequence
        of them, or a mapping name -> model. Every model receives the same inputs, so a model that
        needs a different view (a down-sampled image, a feature subset) should include that
        preprocessing (e.g. as the first layer of an ``nn.Sequential``).
    inputs
        (N, ...) tensor or array of inputs; numpy float arrays are converted to float32 tensors.
    labels
        (N,) integer true labels.
    model_names
        One name per model when ``models`` is a sequence (default ``model-0``, ``model-1``, ...).
    batch_size
        Samples per forward pass.
    metadata
        Extra JSON-serialisable facts stored in the trace (accuracies are added).
    device
        torch device the models run on (the outputs are copied back to the CPU).

    Returns
    -------
    Trace
        probs (M, N, C) float32, labels (N,), model names, metadata.

    Raises
    ------
    DependencyNotInstalled
        If torch is not installed.
    ConfigError
        If arguments are inconsistent (the message names the argument).
    TraceError
        If a model's output is not (N, C) finite logits with C > max label, or models disagree on C.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(4, 3)
    >>> t = record_trace({"lin": net}, torch.zeros(10, 4), [0] * 10)
    >>> t.probs.shape
    (1, 10, 3)
    """
    torch = require("torch", "torch")
    mods, names = _model_list(models, model_names)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ConfigError(f"batch_size: {batch_size!r} is not allowed; it must be a positive integer")
    x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
    if x.is_floating_point() and x.dtype == torch.float64:
        x = x.float()
    y = np.asarray(labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels)
    if x.ndim < 1 or len(x) < 1:
        raise ConfigError(f"inputs: expected (N, ...) with N >= 1 samples, got shape {tuple(x.shape)}")
    if y.shape != (len(x),):
        raise ConfigError(f"labels: expected shape ({len(x)},) to match inputs, got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"labels: dtype {y.dtype} is not integer")
    n = len(x)
    out = []
    for name, model in zip(names, mods):
        was_training = bool(getattr(model, "training", False))
        if hasattr(model, "eval"):
            model.eval()
        chunks = []
        try:
            with torch.no_grad():
                for start in range(0, n, batch_size):
                    logits = model(x[start:start + batch_size].to(device))
                    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
                        raise TraceError(f"model {name!r}: expected (batch, C) logits, got "
                                         f"{getattr(logits, 'shape', type(logits).__name__)}")
                    chunks.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        finally:
            if was_training and hasattr(model, "train"):
                model.train()
        p = np.concatenate(chunks)
        if p.shape[0] != n:
            raise TraceError(f"model {name!r}: produced {p.shape[0]} rows for {n} inputs")
        if not np.isfinite(p).all():
            raise TraceError(f"model {name!r}: produced NaN or inf outputs")
        too_big = check_trace_size(len(mods), n, p.shape[1]) if not out else None
        if too_big:  # before the other models run
            raise TraceError(too_big)
        if out and p.shape[1] != out[0].shape[1]:
            raise TraceError(f"model {name!r}: {p.shape[1]} classes, but {names[0]!r} has {out[0].shape[1]}")
        out.append(p)
    c = out[0].shape[1]
    if y.min() < 0 or y.max() >= c:
        raise TraceError(f"labels: values must lie in [0, {c}) (the models output {c} classes); "
                         f"got min {y.min()}, max {y.max()}")
    probs = np.stack(out).astype(np.float32)
    probs /= probs.sum(axis=2, keepdims=True)
    meta = {"source": "record_trace", **(metadata or {})}
    trace = Trace(probs, y.astype(np.int64), names, meta)
    trace.metadata.setdefault("accuracies", [float(a) for a in trace.accuracies()])
    return trace
