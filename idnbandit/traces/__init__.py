"""Model-output traces: I/O, confidence features, synthetic generator, bundled real traces.

A :class:`Trace` holds the class probabilities of M models on N samples (M, N, C) and the true
labels. Traces come from three places: the bundled real traces (:func:`load_builtin_trace`),
the synthetic generator (:func:`synthetic_trace`), or your own torch models (:func:`record_trace`,
which imports torch only when called).
"""

from .bundled import builtin_trace_names, load_builtin_trace
from .calibrate import CalibratedTrace, calibrate_trace, calibration_split
from .features import (
    FEATURE_NAMES,
    ConfidenceFeatures,
    apply_temperature,
    confidence_features,
    ece,
    feature_matrix,
    fit_temperature,
    nll,
)
from .record import record_trace
from .synthetic import model_offsets, synthetic_trace, synthetic_trace_from_spec
from .trace import Trace

__all__ = [
    "FEATURE_NAMES",
    "CalibratedTrace",
    "ConfidenceFeatures",
    "Trace",
    "apply_temperature",
    "builtin_trace_names",
    "calibrate_trace",
    "calibration_split",
    "confidence_features",
    "ece",
    "feature_matrix",
    "fit_temperature",
    "load_builtin_trace",
    "model_offsets",
    "nll",
    "record_trace",
    "synthetic_trace",
    "synthetic_trace_from_spec",
]
