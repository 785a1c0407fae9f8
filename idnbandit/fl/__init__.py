"""Federated training of the node models of an IDN (torch, imported lazily).

``import idnbandit`` never imports this package. Its names load lazily: the numpy parts (data,
aggregation, routing rates, weight files) work without torch; the torch parts raise
:class:`~idnbandit.errors.DependencyNotInstalled` (``pip install 'idnbandit[fl]'``, which also brings
scikit-learn for the bundled digits images) on first use without it.

* :mod:`~idnbandit.fl.data`: digits images, stratified split, Dirichlet label-skew partition.
* :mod:`~idnbandit.fl.models`: tier models of growing size, the early-exit network.
* :mod:`~idnbandit.fl.aggregate`: FedAvg (and per-block FedAvg) over numpy parameter dicts.
* :mod:`~idnbandit.fl.train`: local SGD with importance weights, FedAvg / FedProx rounds.
* :mod:`~idnbandit.fl.routing`: routing rates of a delivery strategy, importance weights.
* :mod:`~idnbandit.fl.early_exit`: serving-rate-weighted federated early-exit training.

* :mod:`~idnbandit.fl.loop`: the loop that alternates training with simulation (train -> record a
  trace -> learn the delivery policy -> estimate routing -> retrain), the ``idnbandit fl`` command.
* :mod:`~idnbandit.fl.delivery`: its simulation side (trained scenario, delivery policy, routing).

The last two run the simulator: fl/ sits above sim/ in the layers (imports point down).
"""

from importlib import import_module

#: training methods of ``idnbandit fl`` (see :mod:`idnbandit.fl.loop`)
FL_METHODS = ("local", "fedavg", "fedprox", "delivery-aware", "early-exit")

# public name -> submodule; torch-free submodules (data, aggregate, routing, weights_io) import
# without torch, the others raise DependencyNotInstalled on first use
_WHERE = {
    "fedavg": "aggregate", "partial_fedavg": "aggregate",
    "Split": "data", "dirichlet_partition": "data", "load_digits_images": "data", "stratified_split": "data",
    "early_exit_round": "early_exit", "exit_loss_weights": "early_exit",
    "TIER_ARCHITECTURES": "models", "EarlyExitNet": "models", "make_tier_model": "models", "n_params": "models",
    "KEY_KINDS": "routing", "RoutingTable": "routing", "confidence_keys": "routing",
    "estimate_routing": "routing", "importance_weights": "routing",
    "METHODS": "train", "Client": "train", "TrainConfig": "train", "federated_round": "train",
    "get_state": "train", "local_train": "train", "set_state": "train",
    "load_weights": "weights_io", "save_weights": "weights_io",
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


__all__ = [
    "FL_METHODS",
    "KEY_KINDS",
    "METHODS",
    "TIER_ARCHITECTURES",
    "Client",
    "EarlyExitNet",
    "RoutingTable",
    "Split",
    "TrainConfig",
    "confidence_keys",
    "dirichlet_partition",
    "early_exit_round",
    "estimate_routing",
    "exit_loss_weights",
    "fedavg",
    "federated_round",
    "get_state",
    "importance_weights",
    "load_digits_images",
    "load_weights",
    "local_train",
    "make_tier_model",
    "n_params",
    "partial_fedavg",
    "save_weights",
    "set_state",
    "stratified_split",
]
