"""Build the trace of the ``ensemble-hetero`` scenario: heterogeneous models on non-IID data.

Run::

    python -m idnbandit.traces.build_hetero --out idnbandit/traces/data --seed 0

Four scikit-learn models of different architectures are trained, each on its own **label-skewed**
subset of scikit-learn's bundled ``load_digits`` (1797 8x8 images, 10 classes), the way models that
nodes of an IDN trained apart on their own users' data would be:

============  =====================================  =================================================
column        architecture                           training data (per fold)
============  =====================================  =================================================
``logreg``    multinomial logistic regression        classes 0-3 fully, other classes 10 % (device)
``knn``       5-nearest neighbours, distance-weighted classes 3-6 fully, other classes 6 % (edge)
``forest``    random forest, 100 trees of depth 10   classes 6-9 fully, other classes 10 % (regional)
``mlp``       MLP 64-10 (ReLU, Adam)                 classes 8-9 fully, other classes 15 % (cloud)
============  =====================================  =================================================

Outputs are out-of-fold: with stratified 5-fold cross-validation, each fold's held-out samples are
scored by models trained only on subsets of the other folds, so no model ever saw the sample it
scores. Everything is deterministic from ``--seed`` (fold split, subset draws, model seeds).
Needs scikit-learn (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import require
from .features import ece
from .limits import check_folds
from .trace import Trace

__all__ = ["SkewedMember", "hetero_members", "label_skewed_subset", "build_hetero_trace", "main"]

#: default output folder: the bundled traces (``load_builtin_trace("ensemble-hetero")``)
DEFAULT_OUT = Path(__file__).resolve().parent / "data"
TRACE_NAME = "ensemble-hetero"


@dataclass(frozen=True)
class SkewedMember:
    """One model of the heterogeneous ensemble and the label skew of its training data.

    Attributes
    ----------
    name
        Trace column name.
    architecture
        Human-readable description (stored in the trace metadata).
    favoured
        Classes whose training samples are all kept.
    keep_other
        Fraction of the training samples of every other class that is kept (drawn at random).
    """

    name: str
    architecture: str
    favoured: tuple[int, ...]
    keep_other: float

    def make(self, seed: int):
        """A fresh, unfitted scikit-learn estimator for this member."""
        if self.name == "logreg":
            lm, pre, pipe = (require(m, "dev") for m in ("sklearn.linear_model", "sklearn.preprocessing",
                                                         "sklearn.pipeline"))
            return pipe.make_pipeline(pre.StandardScaler(), lm.LogisticRegression(C=0.05, max_iter=2000))
        if self.name == "knn":
            return require("sklearn.neighbors", "dev").KNeighborsClassifier(n_neighbors=5, weights="distance")
        if self.name == "forest":
            return require("sklearn.ensemble", "dev").RandomForestClassifier(
                n_estimators=100, max_depth=10, random_state=seed, n_jobs=1)
        if self.name == "mlp":
            nn, pre, pipe = (require(m, "dev") for m in ("sklearn.neural_network", "sklearn.preprocessing",
                                                         "sklearn.pipeline"))
            return pipe.make_pipeline(pre.StandardScaler(), nn.MLPClassifier(
                hidden_layer_sizes=(64,), alpha=1e-3, max_iter=400, random_state=seed))
        raise ValueError(f"no estimator for member {self.name!r}")


def hetero_members() -> list[SkewedMember]:
    """The four members, in scenario order (device, edge, regional, cloud)."""
    return [
        SkewedMember("logreg", "standardise -> multinomial logistic regression (C=0.05)", (0, 1, 2, 3), 0.10),
        SkewedMember("knn", "5-nearest neighbours (Euclidean, distance-weighted votes)", (3, 4, 5, 6), 0.06),
        SkewedMember("forest", "random forest: 100 trees, max depth 10", (6, 7, 8, 9), 0.10),
        SkewedMember("mlp", "standardise -> MLP 64 ReLU -> 10 (Adam, alpha=1e-3, 400 iterations)", (8, 9), 0.15),
    ]


def label_skewed_subset(y: np.ndarray, favoured: tuple[int, ...], keep_other: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Sorted indices into ``y``: every sample of a favoured class, ``keep_other`` of each other class.

    At least 3 samples of every class are kept so that every model can output every class.
    """
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if c in favoured:
            keep.append(idx)
        else:
            n = max(3, int(round(keep_other * idx.size)))
            keep.append(rng.choice(idx, size=min(n, idx.size), replace=False))
    return np.sort(np.concatenate(keep))


def build_hetero_trace(seed: int = 0, n_folds: int = 5, log=print) -> Trace:
    """Train the members fold by fold and return the out-of-fold trace (see the module docstring)."""
    check_folds(n_folds)  # before training anything
    datasets = require("sklearn.datasets", "dev")
    model_selection = require("sklearn.model_selection", "dev")
    x, y = datasets.load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float64)
    y = y.astype(np.int64)
    members = hetero_members()
    n_classes = 10
    probs = np.zeros((len(members), len(y), n_classes), dtype=np.float64)
    sizes = {m.name: [] for m in members}
    folds = model_selection.StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 8]))
    t0 = time.perf_counter()
    for k, (train_idx, test_idx) in enumerate(folds.split(x, y)):
        for j, m in enumerate(members):
            sub = train_idx[label_skewed_subset(y[train_idx], m.favoured, m.keep_other, rng)]
            model = m.make(seed * 1000 + 10 * k + j).fit(x[sub], y[sub])
            p = np.zeros((len(test_idx), n_classes))
            p[:, model.classes_] = model.predict_proba(x[test_idx])
            probs[j, test_idx] = p
            sizes[m.name].append(len(sub))
        log(f"[{TRACE_NAME}] fold {k + 1}/{n_folds} done in {time.perf_counter() - t0:.1f}s")
    # a floor keeps log-linear pooling finite (kNN and forests output exact zeros), then renormalise
    probs = np.maximum(probs, 1e-4)
    probs /= probs.sum(axis=2, keepdims=True)
    trace = Trace(probs.astype(np.float32), y, tuple(m.name for m in members), {})
    accs, eces = trace.accuracies(), ece(trace.probs, trace.labels)
    per_class = [[float(trace.correct()[j][y == c].mean()) for c in range(n_classes)] for j in range(len(members))]
    trace.metadata.update({
        "dataset": "digits (label-skewed subsets per model)",
        "source": "sklearn.datasets.load_digits (UCI optical digits, test part)",
        "input": "8x8 grey image, 17 levels scaled to [0, 1], flattened to 64 features",
        "classes": [str(i) for i in range(n_classes)],
        "n_samples": int(len(y)),
        "n_classes": n_classes,
        "protocol": f"stratified {n_folds}-fold cross-validation (sklearn StratifiedKFold, shuffle, random_state="
                    f"{seed}); in each fold every model trains on its own label-skewed subset of the training "
                    f"folds and scores the held-out fold (out-of-fold); probabilities floored at 1e-4 and "
                    f"renormalised",
        "seed": seed,
        "sklearn_version": require("sklearn", "dev").__version__,
        "rebuild": f"python -m idnbandit.traces.build_hetero --out idnbandit/traces/data --seed {seed}",
        "models": {
            m.name: {"accuracy": float(a), "ece_15_bins": float(e), "architecture": m.architecture,
                     "favoured_classes": list(m.favoured), "keep_other_fraction": m.keep_other,
                     "mean_training_samples": float(np.mean(sizes[m.name])),
                     "accuracy_per_class": [round(v, 4) for v in per_class[j]]}
            for j, (m, a, e) in enumerate(zip(members, accs, eces))
        },
    })
    return trace


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m idnbandit.traces.build_hetero",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of folds, subsets and models")
    parser.add_argument("--folds", type=int, default=5, help="number of cross-validation folds")
    args = parser.parse_args(argv)
    trace = build_hetero_trace(seed=args.seed, n_folds=args.folds)
    path = trace.save(args.out / f"{TRACE_NAME}.npz")
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    correct = trace.correct()
    for model, facts in trace.metadata["models"].items():
        print(f"  {model:<7} accuracy {facts['accuracy']:.4f}  ECE {facts['ece_15_bins']:.4f}  "
              f"per class {' '.join(f'{v:.2f}' for v in facts['accuracy_per_class'])}")
    vote = (trace.probs.sum(axis=0).argmax(axis=1) == trace.labels).mean()
    print(f"  sum-of-probabilities vote of all models: {vote:.4f}; oracle (any model right): "
          f"{correct.any(axis=0).mean():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
