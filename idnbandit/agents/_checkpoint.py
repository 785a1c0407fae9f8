"""Agent checkpoints: writing and reading the ``.npz`` + JSON file and checking its structure and values.

:meth:`Agent.save` / :meth:`Agent.load` are thin methods over :func:`save_agent` / :func:`load_agent`.

A checkpoint is a zip of ``.npy`` arrays (``np.savez``) with a JSON ``__meta__`` member. Reading it
never unpickles (``np.load(..., allow_pickle=False)``); every way it can be wrong raises
:class:`~idnbandit.errors.CheckpointError` naming the file and the array or field:

* structure — not a zip (e.g. a plain ``.npy``), truncated, a corrupt member or deflate stream, a
  member that is not a ``.npy`` array, metadata that is not the expected JSON object (format,
  version, a string class name, a ``params`` dict with known keys, a generator state);
* arrays — missing, extra, of another shape or dtype;
* values — checked by the agent (:meth:`Agent._check_state` with the helpers of :class:`StateCheck`):
  finite where the algorithm needs it, symmetric positive definite matrices (LinUCB/LinTS ``A`` and
  ``A⁻¹`` per option, by a Cholesky attempt), probabilities and losses in range, counters and stored
  indices inside their arrays (the numba kernels do not check bounds), configuration arrays equal to
  what the parameters give.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, UnknownNameError
from ._params import MAX_STATE_NUMBERS, show

__all__ = ["FORMAT", "VERSION", "MAX_CHECKPOINT_BYTES", "read_checkpoint", "check_params_keys", "StateCheck",
           "expect_array", "reject_extra", "save_agent", "load_agent"]

FORMAT = "idnbandit-agent"
VERSION = 1
#: largest uncompressed checkpoint read (4× the state budget: arrays, buffers and copies of networks)
MAX_CHECKPOINT_BYTES = 4 * 8 * MAX_STATE_NUMBERS


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` of the checkpoint at ``path``; structure checked, values not yet.

    Raises
    ------
    CheckpointError
        If the file is missing, not a zip of ``.npy`` arrays, truncated or corrupted, too large, or its
        metadata is not that of an idnbandit agent checkpoint.
    """
    try:
        path = Path(path)
    except TypeError:
        raise CheckpointError(f"path: {show(path)} is not allowed; give the path of a checkpoint file") from None
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: not an agent checkpoint (not a .npz archive; a plain .npy or another "
                                  "file?); write checkpoints with agent.save()")
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"{path}: members of {total:,} bytes uncompressed exceed the limit of "
                                  f"{MAX_CHECKPOINT_BYTES:,} bytes")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise CheckpointError(f"{path}: the archive holds two members of the same name")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib/numpy raise many types on a damaged file
        raise CheckpointError(f"{path}: not a readable agent checkpoint ({type(exc).__name__}: {exc})") from None
    for k, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise CheckpointError(f"{path}: member {show(k)} is not a .npy array")
    return _read_meta(path, arrays.pop("__meta__", None)), arrays


def _read_meta(path: Path, raw) -> dict:
    bad = f"{path}: not an idnbandit agent checkpoint"
    if raw is None:
        raise CheckpointError(f"{bad} (no __meta__ member)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{bad} (__meta__ is {raw.dtype}{list(raw.shape)}, not uint8 bytes)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{bad} (__meta__ is not JSON: {type(exc).__name__})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{bad} (__meta__ is a JSON {type(meta).__name__}, not an object)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{bad} (format {show(meta.get('format'))}, expected {FORMAT!r})")
    version = meta.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {show(version)} is not supported (this idnbandit "
                              f"reads version {VERSION})")
    extra = sorted(set(meta) - {"format", "version", "class", "module", "params", "rng"})
    if extra:
        raise CheckpointError(f"{path}: metadata field {show(extra[0])} is not allowed")
    for key, typ, what in (("class", str, "a string"), ("params", dict, "an object"), ("rng", dict, "an object")):
        if not isinstance(meta.get(key), typ):
            raise CheckpointError(f"{path}: metadata field {key!r} must be {what}, got {show(meta.get(key))}")
    if "module" in meta and not isinstance(meta["module"], str):
        raise CheckpointError(f"{path}: metadata field 'module' must be a string, got {show(meta['module'])}")
    return meta


def check_params_keys(path, cls, params: dict) -> None:
    """Unknown keys in a checkpoint's ``params`` raise CheckpointError; missing ones take their defaults."""
    import inspect

    allowed = cls._param_names()
    for k in params:
        if k not in allowed:
            raise CheckpointError(f"{path}: params: unknown parameter {show(k)} for {cls.__name__}; "
                                  f"accepted: {', '.join(allowed)}")
    sig = inspect.signature(cls.__init__).parameters
    for k in allowed:
        if k not in params and k in sig and sig[k].default is inspect.Parameter.empty:
            raise CheckpointError(f"{path}: params: required parameter {k!r} is missing")


def expect_array(arrays: dict, name: str, shape: tuple, dtype) -> np.ndarray:
    """``arrays[name]`` if it has ``shape`` and ``dtype``; CheckpointError naming it otherwise."""
    a = arrays.get(name)
    dtype = np.dtype(dtype)
    if a is None or tuple(a.shape) != tuple(shape) or a.dtype != dtype:
        got = None if a is None else f"{a.dtype}{list(a.shape)}"
        raise CheckpointError(f"state array {name}: expected {dtype}{list(shape)}, got {got}")
    return a


def reject_extra(arrays: dict, allowed) -> None:
    """CheckpointError naming the first array of ``arrays`` not in ``allowed`` (a set or a predicate)."""
    ok = allowed if callable(allowed) else (lambda k: k in allowed)
    for k in sorted(arrays):
        if not ok(k):
            raise CheckpointError(f"state array {show(k)}: not part of this agent's state (extra array)")


class StateCheck:
    """Value checks of a loaded state, each raising CheckpointError naming the array and the problem.

    ``arrays`` maps names to arrays (for kernel agents ``{"s0": ..., ...}`` — use :meth:`of_tuple`);
    ``fresh`` the same names for a freshly built agent with the same parameters (for :meth:`config`).
    """

    def __init__(self, arrays: dict[str, np.ndarray], fresh: dict[str, np.ndarray] | None = None,
                 what: dict[str, str] | None = None):
        self.arrays = arrays
        self.fresh = fresh or {}
        self.what = what or {}

    @classmethod
    def of_tuple(cls, state: tuple, fresh: tuple, what: tuple[str, ...] = ()) -> StateCheck:
        names = [f"s{i}" for i in range(len(state))]
        return cls(dict(zip(names, state)), dict(zip(names, fresh)), dict(zip(names, what)))

    def fail(self, name: str, problem: str):
        w = self.what.get(name)
        raise CheckpointError(f"state array {name}" + (f" ({w})" if w else "") + f": {problem}")

    def _a(self, name: str, index=None) -> np.ndarray:
        a = self.arrays[name]
        return a if index is None else a[index]

    # ------------------------------------------------------------------ element-wise
    def config(self, *names: str) -> None:
        """Arrays derived from the parameters: must equal the fresh agent's (NaN equal to NaN)."""
        for n in names:
            if not np.array_equal(self.arrays[n], self.fresh[n], equal_nan=self.arrays[n].dtype.kind == "f"):
                self.fail(n, "does not match the agent's parameters (configuration arrays cannot change)")

    def finite(self, *names: str, index=None) -> None:
        for n in names:
            a = self._a(n, index)
            if not np.isfinite(a).all():
                bad = np.argwhere(~np.isfinite(a))[0]
                self.fail(n, f"holds {a[tuple(bad)]} at {tuple(int(i) for i in bad)}; values must be finite")

    def not_inf(self, *names: str, index=None) -> None:
        """No ±inf (NaN allowed: it marks "not observed" or "none")."""
        for n in names:
            if np.isinf(self._a(n, index)).any():
                self.fail(n, "holds inf; values must be finite or NaN (not observed)")

    def in_range(self, name: str, lo=None, hi=None, *, index=None, nan_ok: bool = False, what: str = "values") -> None:
        """``lo <= a <= hi`` element-wise (NaN allowed only if ``nan_ok``; ints compared exactly)."""
        a = self._a(name, index)
        if a.dtype.kind == "f":
            if nan_ok:
                a = a[~np.isnan(a)]
            if not np.isfinite(a).all():
                self.fail(name, f"{what} must be finite" + (" or NaN" if nan_ok else ""))
        if a.size and ((lo is not None and a.min() < lo) or (hi is not None and a.max() > hi)):
            rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            self.fail(name, f"{what} must lie in {rng}; found {a.min()} .. {a.max()}")

    def counts(self, name: str, lo: int = 0, hi: int | None = None, *, index=None, what: str = "counts") -> None:
        """Integer counters / stored indices in ``[lo, hi]`` (the kernels index arrays with them)."""
        self.in_range(name, lo, hi, index=index, what=what)

    def increasing(self, name: str, n: int, *, lo: float = 0.0, hi: float = 1.0, what: str = "breakpoints",
                   count: str = "") -> None:
        """``a[0] = lo < a[1] < ... < a[n] = hi`` (the first ``n + 1`` entries; binary searches rely on it);
        ``count`` names the array holding ``n`` (for the message)."""
        a = self.arrays[name][: n + 1]
        if not (np.isfinite(a).all() and a[0] == lo and a[-1] == hi and (np.diff(a) > 0).all()):
            self.fail(name, f"{what} must increase strictly from {lo} to {hi} over the first {n + 1} entries"
                      + (f" (the count in state array {count})" if count else ""))

    def integral(self, name: str, *, index=None) -> None:
        a = self._a(name, index)
        if not np.array_equal(a, np.floor(a)):
            self.fail(name, "counts must be whole numbers")

    # ------------------------------------------------------------------ matrices
    def spd(self, name: str, label: str = "matrix", *, index=None, rtol: float = 1e-8) -> None:
        """Every (d, d) matrix along the first axis is finite, symmetric and positive definite (Cholesky)."""
        a = self._a(name, index)
        mats = a.reshape(-1, a.shape[-2], a.shape[-1])
        if not np.isfinite(mats).all():
            self.fail(name, f"{label} holds NaN or inf; values must be finite")
        for k, m in enumerate(mats):
            scale = np.abs(m).max()
            if np.abs(m - m.T).max() > rtol * scale:
                self.fail(name, f"{label} of option {k} is not symmetric")
            try:
                np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                self.fail(name, f"{label} of option {k} is not positive definite")

    def cholesky_factor(self, name: str, label: str = "Cholesky factor") -> None:
        """Every matrix is finite, lower triangular with a positive diagonal."""
        a = self.arrays[name]
        mats = a.reshape(-1, a.shape[-2], a.shape[-1])
        if not np.isfinite(mats).all():
            self.fail(name, f"{label} holds NaN or inf; values must be finite")
        for k, m in enumerate(mats):
            if np.triu(m, 1).any():
                self.fail(name, f"{label} of option {k} is not lower triangular")
            if not (np.diag(m) > 0).all():
                self.fail(name, f"{label} of option {k} has a diagonal entry <= 0 (not positive definite)")

    def probabilities(self, name: str, *, index=None, atol: float = 1e-6) -> None:
        """Entries in [0, 1] summing to 1."""
        self.in_range(name, 0.0, 1.0, index=index, what="probabilities")
        s = float(self._a(name, index).sum())
        if abs(s - 1.0) > atol:
            self.fail(name, f"probabilities sum to {s}, not 1")


# ---------------------------------------------------------------------- Agent.save / Agent.load
def save_agent(agent, path: str | os.PathLike) -> Path:
    """:meth:`Agent.save <idnbandit.agents.base.Agent.save>`: write ``agent`` to one ``.npz`` file, atomically."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(".npz")
    params = agent.get_params()
    if isinstance(params.get("seed"), np.random.Generator):
        params["seed"] = None
    try:
        meta = json.dumps({
            "format": FORMAT, "version": VERSION, "class": type(agent).__name__, "module": type(agent).__module__,
            "params": params, "rng": agent._rng.bit_generator.state,
        })
    except TypeError as exc:
        raise ConfigError(f"{type(agent).__name__}: parameters are not JSON-serialisable ({exc})") from None
    arrays = agent._state_arrays()
    path.parent.mkdir(parents=True, exist_ok=True)
    from .._io import atomic_open

    with atomic_open(path, "wb") as f:
        np.savez(f, __meta__=np.frombuffer(meta.encode(), dtype=np.uint8), **arrays)
    return path


def load_agent(cls: type, path: str | os.PathLike, root: type):
    """:meth:`Agent.load <idnbandit.agents.base.Agent.load>` called on ``cls``; ``root`` is
    :class:`~idnbandit.agents.base.Agent` (called on it, the class is looked up in the registry)."""
    meta, arrays = read_checkpoint(path)
    path = Path(path)
    cls_name, params, rng_state = meta["class"], meta["params"], meta["rng"]
    target = cls
    if cls is root or cls.__name__ != cls_name:
        from .registry import agent_class_by_name

        try:
            target = agent_class_by_name(cls_name)
        except UnknownNameError as exc:
            raise CheckpointError(f"{path}: checkpoint of an unknown agent class ({exc})") from None
        if cls is not root and not issubclass(target, cls):
            raise CheckpointError(f"{path}: checkpoint holds a {cls_name}, not a {cls.__name__}")
    check_params_keys(path, target, params)
    try:
        agent = target(**params)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: params: {exc}") from None
    except TypeError as exc:
        raise CheckpointError(f"{path}: params: rejected by {target.__name__} ({exc})") from None
    try:
        agent._set_state_arrays(arrays)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: state arrays do not fit {target.__name__} "
                              f"({type(exc).__name__}: {exc})") from None
    try:
        agent._rng.bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as exc:
        raise CheckpointError(f"{path}: corrupted generator state 'rng' ({type(exc).__name__}: {exc})") from None
    return agent
