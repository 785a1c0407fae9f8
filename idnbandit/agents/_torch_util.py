"""What the torch agents share: lazy import, device check, seeded MLPs, state as plain arrays.

torch is imported only when a torch agent is built (``idnbandit.errors.require``). Checkpoints stay in
the base class's ``.npz`` + JSON format: every tensor (network parameters, optimiser moments, the
generator state) is stored as a numpy array and read back with ``np.load(allow_pickle=False)``, so
loading a checkpoint never unpickles anything — stricter than ``torch.load(weights_only=True)``
and needing no safetensors.
"""

from __future__ import annotations

import numpy as np

from ..errors import CheckpointError, ConfigError, require
from ._checkpoint import StateCheck, reject_extra
from ._params import MAX_STATE_NUMBERS, show

__all__ = ["import_torch", "check_device", "check_hidden", "make_mlp", "module_arrays", "load_module_arrays",
           "adam_arrays", "load_adam_arrays", "TorchAgentMixin"]


def import_torch():
    """The torch module, or :class:`~idnbandit.errors.DependencyNotInstalled` naming the ``torch`` extra."""
    return require("torch", "torch")


def check_device(device) -> None:
    """Raise ConfigError naming ``device`` unless torch accepts it and it is available here."""
    torch = import_torch()
    if not isinstance(device, str) or len(device) > 64:
        raise ConfigError(f"device: {show(device)} is not allowed; give a torch device name such as 'cpu' or 'cuda:0'")
    try:
        dev = torch.device(device)
        torch.zeros(1, device=dev)
    except (RuntimeError, TypeError, ValueError) as exc:
        why = (str(exc).splitlines() or [""])[0][:160]
        raise ConfigError(f"device: {device!r} is not usable here ({why}); use 'cpu' or an available "
                          "accelerator such as 'cuda:0'") from None


MAX_LAYERS = 64  # hidden layers of an MLP
MAX_WIDTH = 10**6  # units of one hidden layer


def check_hidden(hidden) -> tuple[int, ...]:
    """``hidden`` as a tuple of layer widths (each an integer in [1, 10**6]; at most 64 layers; may be empty)."""
    if not isinstance(hidden, (list, tuple, np.ndarray)):
        raise ConfigError(f"hidden: {show(hidden)} is not allowed; give a list of layer widths such as (64, 64)")
    try:
        h = tuple(hidden)
    except TypeError:
        raise ConfigError(f"hidden: {show(hidden)} is not allowed; give a list of layer widths such as (64, 64)") from None
    if len(h) > MAX_LAYERS:
        raise ConfigError(f"hidden: {len(h)} layers is not allowed; at most {MAX_LAYERS}")
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not 1 <= v <= MAX_WIDTH for v in h):
        raise ConfigError(f"hidden: {show(hidden)} is not allowed; every layer width must be an integer in "
                          f"[1, {MAX_WIDTH:,}]")
    return tuple(int(v) for v in h)


def mlp_size(n_in: int, hidden: tuple[int, ...], n_out: int) -> int:
    """Number of parameters (weights and biases) of the MLP ``n_in -> hidden -> n_out``."""
    sizes = (n_in, *hidden, n_out)
    return sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(sizes) - 1))


def make_mlp(torch, n_in: int, hidden: tuple[int, ...], n_out: int, generator, device):
    """``Linear → ReLU → … → Linear`` initialised from ``generator`` (never the global torch seed).

    Weights and biases are drawn U(−1/√fan_in, 1/√fan_in), the distribution of torch's default
    ``nn.Linear`` initialisation.
    """
    layers = []
    sizes = (n_in, *hidden, n_out)
    for i in range(len(sizes) - 1):
        lin = torch.nn.utils.skip_init(torch.nn.Linear, sizes[i], sizes[i + 1])  # no global-RNG init
        bound = 1.0 / float(np.sqrt(sizes[i]))
        with torch.no_grad():
            for p in (lin.weight, lin.bias):
                p.copy_(torch.rand(p.shape, generator=generator) * (2 * bound) - bound)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def module_arrays(prefix: str, module) -> dict[str, np.ndarray]:
    """Parameters and buffers of ``module`` as ``{prefix + name: float array}``."""
    return {f"{prefix}{k}": v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_module_arrays(prefix: str, module, arrays: dict[str, np.ndarray]) -> None:
    """Copy ``arrays`` written by :func:`module_arrays` into ``module``; ConfigError on any mismatch."""
    import torch

    new = {}
    for k, v in module.state_dict().items():
        a = arrays.get(prefix + k)
        if a is None or tuple(a.shape) != tuple(v.shape):
            raise CheckpointError(f"state array {prefix}{k}: expected shape {tuple(v.shape)}, "
                                  f"got {None if a is None else tuple(a.shape)}")
        new[k] = torch.as_tensor(np.asarray(a), dtype=v.dtype, device=v.device)
    module.load_state_dict(new)


def adam_arrays(prefix: str, optimizer, params) -> dict[str, np.ndarray]:
    """The per-parameter state of an Adam / SGD ``optimizer`` (moments, step) as arrays."""
    out = {}
    for i, p in enumerate(params):
        st = optimizer.state.get(p, {})
        for k in sorted(st):
            v = st[k]
            out[f"{prefix}{i}_{k}"] = v.detach().cpu().numpy().copy() if hasattr(v, "detach") else np.asarray(v)
    return out


def load_adam_arrays(prefix: str, optimizer, params, arrays: dict[str, np.ndarray]) -> None:
    """Restore what :func:`adam_arrays` wrote (missing entries: that parameter had no state yet)."""
    import torch

    optimizer.state.clear()
    for i, p in enumerate(params):
        keys = [k for k in arrays if k.startswith(f"{prefix}{i}_")]
        if not keys:
            continue
        st = {}
        for k in keys:
            name = k[len(f"{prefix}{i}_"):]
            a = np.asarray(arrays[k])
            if name != "step" and tuple(a.shape) != tuple(p.shape):
                raise CheckpointError(f"state array {k}: expected shape {tuple(p.shape)}, got {tuple(a.shape)}")
            st[name] = torch.as_tensor(a, dtype=torch.float32 if name == "step" else p.dtype,
                                       device="cpu" if name == "step" else p.device)
        optimizer.state[p] = st


class TorchAgentMixin:
    """Save / load of torch agents through the base class's ``.npz`` checkpoint (no pickle).

    Subclasses implement ``_torch_state() -> dict[str, np.ndarray]`` and
    ``_load_torch_state(arrays)`` (raising ConfigError on a mismatch).
    """

    def _new_network(self):
        """Import torch, set ``_torch`` / ``_dev`` / ``_gen`` (seeded from the agent's Generator), return
        a fresh MLP ``n_features -> hidden -> n_actions`` on the agent's device."""
        torch = import_torch()
        self._torch = torch
        self._dev = torch.device(self.device)
        self._gen = torch.Generator().manual_seed(int(self._rng.integers(2**63 - 1)))
        return self._another_network()

    def _another_network(self):
        """One more MLP of the same shape, initialised from the same seeded torch Generator."""
        return make_mlp(self._torch, self.n_features, self.hidden, self.n_actions, self._gen, self._dev)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return self._torch_state()

    #: names of optimiser-state arrays (present only once the optimiser has stepped)
    _optional_state_prefix = "adam."

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        expected = set(self._torch_state())
        n_params = len(list(self._net.parameters()))
        opt = self._optional_state_prefix
        optional = {f"{opt}{i}_{k}" for i in range(n_params) for k in ("exp_avg", "exp_avg_sq", "step")}
        reject_extra(arrays, lambda k: k in expected or k in optional)
        for k in sorted(arrays):
            a = arrays[k]
            if a.dtype.kind not in "fiu" or a.size > MAX_STATE_NUMBERS:
                raise CheckpointError(f"state array {k}: {a.dtype}{list(a.shape)} is not a numeric array of this agent")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise CheckpointError(f"state array {k}: holds NaN or inf; network weights, optimiser moments and "
                                      "buffers must be finite")
        try:
            self._load_torch_state(arrays)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise CheckpointError(f"state arrays do not fit {type(self).__name__} ({type(exc).__name__}: {exc})") from None
        self._check_torch_state(StateCheck(arrays))

    def _check_torch_state(self, c: StateCheck) -> None:
        """Value checks beyond finiteness (counters, stored actions); raise CheckpointError naming the array."""


def array_of(arrays: dict[str, np.ndarray], name: str, shape: tuple, dtype) -> np.ndarray:
    """``arrays[name]`` checked for ``shape`` and ``dtype`` (a copy); ConfigError naming it otherwise."""
    a = arrays.get(name)
    if a is None or tuple(a.shape) != tuple(shape) or a.dtype != np.dtype(dtype):
        raise CheckpointError(f"state array {name}: expected {np.dtype(dtype)}{list(shape)}, "
                              f"got {None if a is None else f'{a.dtype}{list(a.shape)}'}")
    return np.array(a, copy=True)
