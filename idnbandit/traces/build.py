"""Rebuild the bundled real traces ``digits`` and ``segment`` (package data).

Run::

    python -m idnbandit.traces.build --out idnbandit/traces/data --seed 0

For each dataset a ladder of four torch models of increasing capacity is trained with stratified
5-fold cross-validation; every sample's outputs come from the fold model that did not train on it
(out-of-fold predictions), recorded with :func:`idnbandit.traces.record_trace`. The script is
deterministic by seed: one torch thread, ``torch.use_deterministic_algorithms(True)``, and a seeded
``torch.Generator`` for initialisation and shuffling. Needs the ``dev`` extra
(torch and scikit-learn).

Datasets
--------
* ``digits``: scikit-learn's bundled ``load_digits`` (1797 8x8 grey images, 10 classes).
* ``segment``: river's bundled ``datasets.ImageSegments`` (UCI Image Segmentation: 2310 samples,
  18 features, 7 classes).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UnknownNameError, require
from .features import ece
from .limits import check_folds
from .record import record_trace
from .trace import Trace

__all__ = ["Recipe", "digits_recipes", "segment_recipes", "build_trace", "main"]

# ImageSegments inputs of the segment ladder (weakest model: position and brightness only)
_SEGMENT_COLOUR = ("rawred-mean", "rawblue-mean", "rawgreen-mean", "exred-mean", "exblue-mean",
                   "exgreen-mean", "value-mean", "saturation-mean", "hue-mean")
SEGMENT_INPUTS = {
    "2f": ("region-centroid-row", "intensity-mean"),
    "4f": ("region-centroid-row", "intensity-mean", "hue-mean", "saturation-mean"),
    "11f": ("region-centroid-row", "intensity-mean", *_SEGMENT_COLOUR),
    "all": ("region-centroid-col", "region-centroid-row", "short-line-density-5", "short-line-density-2",
            "vedge-mean", "vegde-sd", "hedge-mean", "hedge-sd", "intensity-mean", *_SEGMENT_COLOUR),
}


@dataclass(frozen=True)
class Recipe:
    """How one model of a ladder is built and trained.

    Attributes
    ----------
    name
        Trace column name.
    architecture
        Human-readable layer list, stored in the trace metadata.
    make
        ``make(torch, x_train) -> nn.Module`` builds a fresh model; it may compute preprocessing
        constants (standardisation) from the training fold only.
    epochs, lr, weight_decay, batch_size
        Adam training recipe (cross-entropy loss).
    cosine
        Anneal the learning rate to 0 with a cosine schedule over the epochs (else constant).
    """

    name: str
    architecture: str
    make: Callable
    epochs: int
    lr: float
    weight_decay: float = 0.0
    batch_size: int = 64
    cosine: bool = False

    def recipe_text(self) -> str:
        sched = "cosine-annealed" if self.cosine else "constant"
        return (f"Adam lr={self.lr:g} ({sched}), weight_decay={self.weight_decay:g}, batch {self.batch_size}, "
                f"{self.epochs} epochs, cross-entropy")


# ------------------------------------------------------------------------------------ models
def _standardize(torch, x_train, columns=None):
    """A module selecting ``columns`` and standardising them with training-fold statistics."""
    nn = torch.nn
    cols = torch.arange(x_train.shape[1]) if columns is None else torch.as_tensor(columns)
    sub = x_train[:, cols]
    mean, std = sub.mean(0), sub.std(0).clamp_min(1e-6)

    class Standardize(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("cols", cols)
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, x):
            return (x[:, self.cols] - self.mean) / self.std

    return Standardize()


def digits_recipes() -> list[Recipe]:
    """The digits ladder: logreg-4x4, mlp-16, cnn-small, cnn-wide (inputs (N, 1, 8, 8) in [0, 1])."""

    def logreg(torch, x):
        nn = torch.nn
        return nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 10))

    def mlp(torch, x):
        nn = torch.nn
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    def cnn_small(torch, x):
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(256, 10))

    def cnn_wide(torch, x):
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.25),
                             nn.Linear(64, 10))

    return [
        Recipe("logreg-4x4", "2x2 average pooling to 4x4 -> linear 16->10 (multinomial logistic regression)",
               logreg, epochs=60, lr=0.05, batch_size=128),
        Recipe("mlp-16", "flatten 64 -> linear 64->16 -> ReLU -> linear 16->10", mlp, epochs=40, lr=1e-2),
        Recipe("cnn-small", "conv3x3 1->16, ReLU, maxpool2 -> linear 256->10", cnn_small,
               epochs=30, lr=1e-2, cosine=True),
        Recipe("cnn-wide", "conv3x3 1->32, ReLU, maxpool2 -> conv3x3 32->64, ReLU, maxpool2 -> "
               "linear 256->64, ReLU, dropout 0.25 -> linear 64->10", cnn_wide,
               epochs=30, lr=5e-3, cosine=True),
    ]


def segment_recipes(feature_names: list[str]) -> list[Recipe]:
    """The segment ladder: logreg-2f, mlp-4, mlp-32, mlp-128x2 (inputs (N, 18) raw features).

    Capacity and input richness grow together, like sensors of increasing quality: 2 features, 4,
    11 (position and colour), then all 18.
    """
    cols = {k: [feature_names.index(f) for f in v] for k, v in SEGMENT_INPUTS.items()}

    def mlp(inputs, hidden):
        def make(torch, x):
            nn = torch.nn
            layers, width = [_standardize(torch, x, cols[inputs])], len(cols[inputs])
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            return nn.Sequential(*layers, nn.Linear(width, 7))

        return make

    def text(inputs, hidden):
        widths = [len(cols[inputs]), *hidden, 7]
        layers = " -> ReLU -> ".join(f"linear {a}->{b}" for a, b in zip(widths[:-1], widths[1:]))
        return f"standardise {len(cols[inputs])} features {list(SEGMENT_INPUTS[inputs])} -> {layers}"

    return [
        Recipe("logreg-2f", text("2f", []), mlp("2f", []), epochs=60, lr=0.05, batch_size=128),
        Recipe("mlp-4", text("4f", [4]), mlp("4f", [4]), epochs=40, lr=1e-2),
        Recipe("mlp-32", text("11f", [32]), mlp("11f", [32]), epochs=40, lr=1e-2, batch_size=128),
        Recipe("mlp-128x2", text("all", [128, 128]), mlp("all", [128, 128]), epochs=60, lr=3e-3,
               weight_decay=1e-4, cosine=True),
    ]


# ------------------------------------------------------------------------------------ data
def load_digits_data() -> tuple[np.ndarray, np.ndarray, dict]:
    """(1797, 1, 8, 8) float32 images in [0, 1], (1797,) labels, dataset facts."""
    datasets = require("sklearn.datasets", "dev")
    x, y = datasets.load_digits(return_X_y=True)
    info = {"dataset": "digits", "source": "sklearn.datasets.load_digits (UCI optical digits, test part)",
            "input": "8x8 grey image, 17 levels scaled to [0, 1]", "classes": [str(i) for i in range(10)]}
    return (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64), info


def load_segment_data() -> tuple[np.ndarray, np.ndarray, dict]:
    """(2310, 18) float32 raw features, (2310,) labels (classes sorted by name), dataset facts."""
    from river import datasets

    rows = list(datasets.ImageSegments())
    features = list(rows[0][0])
    classes = sorted({label for _, label in rows})
    x = np.array([[r[0][f] for f in features] for r in rows], dtype=np.float32)
    y = np.array([classes.index(label) for _, label in rows], dtype=np.int64)
    info = {"dataset": "segment", "source": "river.datasets.ImageSegments (UCI Image Segmentation)",
            "input": "18 region features (raw; each model standardises with its training fold's statistics)",
            "features": features, "classes": classes}
    return x, y, info


# ------------------------------------------------------------------------------------ training
def _train(torch, recipe: Recipe, x, y, gen):
    nn = torch.nn
    model = recipe.make(torch, x)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.epochs) if recipe.cosine else None
    n = len(x)
    model.train()
    for _ in range(recipe.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, recipe.batch_size):
            idx = perm[start:start + recipe.batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
    return model.eval()


def _flops_and_params(torch, model, x1) -> tuple[float, int]:
    """Multiply-adds x 2 of one forward pass (Linear and Conv2d layers), and the parameter count."""
    nn = torch.nn
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Linear):
            total[0] += 2 * mod.in_features * mod.out_features
        elif isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            total[0] += 2 * mod.in_channels // mod.groups * k * out.shape[1] * out.shape[2] * out.shape[3]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    with torch.no_grad():
        model.eval()(x1)
    for h in handles:
        h.remove()
    return total[0] / 1e9, sum(p.numel() for p in model.parameters())


def build_trace(name: str, seed: int = 0, n_folds: int = 5, log=print) -> Trace:
    """Train the ladder of dataset ``name`` ("digits" or "segment") and return its out-of-fold trace."""
    check_folds(n_folds)  # before training anything
    torch = require("torch", "torch")
    model_selection = require("sklearn.model_selection", "dev")
    if name == "digits":
        x, y, info = load_digits_data()
        recipes = digits_recipes()
    elif name == "segment":
        x, y, info = load_segment_data()
        recipes = segment_recipes(info["features"])
    else:
        raise UnknownNameError("dataset", name, ["digits", "segment"])
    n_classes = int(y.max()) + 1
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    probs = np.zeros((len(recipes), len(y), n_classes), dtype=np.float32)
    folds = model_selection.StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    sizes = {}
    t0 = time.perf_counter()
    for k, (train_idx, test_idx) in enumerate(folds.split(x, y)):
        models = {}
        for m, recipe in enumerate(recipes):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + 1000 * k + m)
            torch.manual_seed(seed * 1_000_003 + 1000 * k + m)  # layer initialisation
            models[recipe.name] = _train(torch, recipe, xt[train_idx], yt[train_idx], gen)
            sizes.setdefault(recipe.name, _flops_and_params(torch, models[recipe.name], xt[:1]))
        fold_trace = record_trace(models, xt[test_idx], y[test_idx], batch_size=1024)
        probs[:, test_idx] = fold_trace.probs
        accs = " ".join(f"{n}={a:.3f}" for n, a in zip(fold_trace.model_names, fold_trace.accuracies()))
        log(f"[{name}] fold {k + 1}/{n_folds} done in {time.perf_counter() - t0:.0f}s: {accs}")
    probs /= probs.sum(axis=2, keepdims=True)
    trace = Trace(probs, y, tuple(r.name for r in recipes), {})
    accs, eces = trace.accuracies(), ece(trace.probs, trace.labels)
    trace.metadata.update({
        **info,
        "n_samples": int(len(y)),
        "n_classes": n_classes,
        "protocol": f"stratified {n_folds}-fold cross-validation (sklearn StratifiedKFold, shuffle, "
                    f"random_state={seed}); every sample's outputs come from the model that did not "
                    f"train on it (out-of-fold)",
        "seed": seed,
        "torch_version": torch.__version__,
        "rebuild": f"python -m idnbandit.traces.build --out idnbandit/traces/data --seed {seed}",
        "models": {
            r.name: {"accuracy": float(a), "ece_15_bins": float(e), "gflops": sizes[r.name][0],
                     "n_params": int(sizes[r.name][1]), "architecture": r.architecture,
                     "training": r.recipe_text()}
            for r, a, e in zip(recipes, accs, eces)
        },
    })
    return trace


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m idnbandit.traces.build", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of folds, initialisation and shuffling")
    parser.add_argument("--datasets", nargs="+", default=["digits", "segment"], choices=["digits", "segment"])
    parser.add_argument("--folds", type=int, default=5, help="number of cross-validation folds")
    args = parser.parse_args(argv)
    torch = require("torch", "torch")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for name in args.datasets:
        t0 = time.perf_counter()
        trace = build_trace(name, seed=args.seed, n_folds=args.folds)
        path = trace.save(args.out / f"{name}.npz")
        print(f"[{name}] wrote {path} ({path.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t0:.0f}s")
        for model, facts in trace.metadata["models"].items():
            print(f"  {model:<11} accuracy {facts['accuracy']:.4f}  ECE {facts['ece_15_bins']:.4f}  "
                  f"{facts['gflops'] * 1e6:.1f} kFLOP  {facts['n_params']} params")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
