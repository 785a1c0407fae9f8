"""Federated training of an IDN's node models, alternating with the delivery strategy it serves.

``run_fl(scenario, FLConfig(method=...))`` trains one model per node on a Dirichlet label-skewed
split of scikit-learn's digits and returns the trained scenario and its test trace:

============== =====================================================================================
method         what is trained
============== =====================================================================================
local          every node trains its own model on its own data only (no federation)
fedavg         one model per tier, trained by FedAvg over all nodes' data (sample-count weights)
fedprox        the same with FedProx's proximal term
delivery-aware FedAvg in phases; between phases the delivery policy is learned on the current models
               (simulated), its routing rates re-estimated, and each tier's model is trained with
               sample weights ``P(served at that tier | sample)`` (:mod:`idnbandit.fl.routing`)
early-exit     one early-exit network, exit e at tier e, exit losses weighted by serving rates
               re-estimated the same way (:mod:`idnbandit.fl.early_exit`)
============== =====================================================================================

The alternation is: train -> record a trace on the validation split -> learn the delivery policy
(:func:`~idnbandit.fl.delivery.learn_policy`) -> estimate routing -> retrain. The final trace
is recorded on the held-out test split. This loop runs the simulator: fl/ sits above sim/ in the
layers (imports point down: bench -> fl -> sim -> scenario -> traces), and importing this module
imports torch (``import idnbandit.fl`` alone does not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import ConfigError, require
from ..scenario import Scenario
from ..traces import Trace, record_trace
from . import (
    FL_METHODS,
    KEY_KINDS,
    Client,
    EarlyExitNet,
    TrainConfig,
    confidence_keys,
    dirichlet_partition,
    early_exit_round,
    exit_loss_weights,
    federated_round,
    get_state,
    importance_weights,
    load_digits_images,
    local_train,
    make_tier_model,
    stratified_split,
)
from .delivery import TIER_NAMES, estimate_routing_sim, fl_scenario, learn_policy, node_levels
from .models import TIER_ARCHITECTURES

__all__ = ["FL_METHODS", "FLConfig", "FLResult", "run_fl"]


_ADAPTIVE = ("delivery-aware", "early-exit")


@dataclass(frozen=True)
class FLConfig:
    """One federated training run.

    Attributes
    ----------
    method
        One of :data:`FL_METHODS`.
    rounds
        Communication rounds in total (local: the same number of local training passes).
    alternations
        delivery-aware / early-exit: number of training phases; the routing is re-estimated between
        phases (``alternations - 1`` times). Other methods train in one phase.
    alpha
        Dirichlet concentration of the label-skew partition (small = more skewed).
    seed
        Seeds the split, the partition, the initial weights, the batch order and the simulations.
    policy
        Delivery agent (a name of ``idnbandit agents``) learned on the trained models.
    policy_steps
        Requests the policy learns from in each re-estimation.
    routing_steps
        Requests used to estimate the routing rates.
    key
        ``"confidence"`` (bin of the device model's max probability) or ``"class"``.
    n_bins
        Confidence bins.
    floor
        Floor added to routing rates (importance weights) and serving rates (exit weights).
    aggregation
        ``"fedavg"`` or ``"fedprox"``: the aggregation of delivery-aware training.
    train
        Local optimisation recipe.
    """

    method: str = "fedavg"
    rounds: int = 20
    alternations: int = 3
    alpha: float = 0.5
    seed: int = 0
    policy: str = "linucb"
    policy_steps: int = 20_000
    routing_steps: int = 4_000
    key: str = "confidence"
    n_bins: int = 10
    floor: float = 0.05
    aggregation: str = "fedavg"
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.method not in FL_METHODS:
            from ..errors import close_matches

            hint = close_matches(str(self.method), FL_METHODS)
            raise ConfigError(f"method: {self.method!r} is not allowed; use one of {', '.join(FL_METHODS)}"
                              + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        for name in ("rounds", "alternations", "policy_steps", "routing_steps", "n_bins"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{name}: {v!r} is not allowed; it must be a positive integer")
        if self.method in _ADAPTIVE and self.alternations > self.rounds:
            raise ConfigError(f"alternations: {self.alternations} > rounds {self.rounds}; each phase needs a round")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed: {self.seed!r} is not allowed; it must be an integer >= 0")
        if self.key not in KEY_KINDS:
            raise ConfigError(f"key: {self.key!r} is not allowed; use one of {', '.join(KEY_KINDS)}")
        if self.aggregation not in ("fedavg", "fedprox"):
            raise ConfigError(f"aggregation: {self.aggregation!r} is not allowed; use fedavg or fedprox")
        if not np.isfinite(self.alpha) or self.alpha <= 0:
            raise ConfigError(f"alpha: {self.alpha!r} is not allowed; it must be > 0")
        if not np.isfinite(self.floor) or self.floor <= 0:
            raise ConfigError(f"floor: {self.floor!r} is not allowed; it must be > 0")

    @property
    def phases(self) -> int:
        return self.alternations if self.method in _ADAPTIVE else 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class FLResult:
    """What :func:`run_fl` returns.

    Attributes
    ----------
    scenario
        The base scenario rewired to the trained models (trace path ``trace.npz``).
    trace
        Outputs of every node's trained model on the test split (column = node name).
    weights
        ``{node: {parameter: array}}``: what each node hosts.
    history
        One dict per phase: rounds done, validation accuracy per node, and (between phases) the
        policy's validation reward and the routing table the next phase was trained with.
    config
        The run's configuration.
    """

    scenario: Scenario
    trace: Trace
    weights: dict
    history: list
    config: FLConfig


class _Models:
    """The trainable networks of one method and the module each node serves."""

    def __init__(self, method: str, levels: dict[str, int], gen):
        self.method, self.levels = method, levels
        if method == "local":
            self.nets = {n: make_tier_model(lv, gen) for n, lv in levels.items()}
        elif method == "early-exit":
            self.nets = {"early-exit": EarlyExitNet(len(TIER_NAMES), gen)}
        else:
            self.nets = {lv: make_tier_model(lv, gen) for lv in sorted(set(levels.values()))}

    def module(self, node: str):
        lv = self.levels[node]
        if self.method == "local":
            return self.nets[node]
        if self.method == "early-exit":
            return self.nets["early-exit"].exit_model(lv)
        return self.nets[lv]

    def node_state(self, node: str) -> dict:
        if self.method == "early-exit":
            net, lv = self.nets["early-exit"], self.levels[node]
            return {k: v for k, v in get_state(net).items() if EarlyExitNet.exit_of_parameter(k) <= lv}
        return get_state(self.module(node))


def _seeds(seed: int):
    ss = np.random.SeedSequence(seed).spawn(4)
    return (np.random.default_rng(ss[0]), np.random.default_rng(ss[1]), int(ss[2].generate_state(1)[0]),
            int(ss[3].generate_state(1)[0] % (2**31 - 1)))


def _record(models: _Models, x, y, meta: dict) -> Trace:
    nodes = list(models.levels)
    return record_trace({n: models.module(n) for n in nodes}, x, y, metadata=meta)


def _sample_weights(models: _Models, clients, routing, cfg: FLConfig, torch) -> dict[int, list[np.ndarray]]:
    """Per tier level: one importance-weight array per client (all clients' weights sum to 1)."""
    if cfg.key == "class":
        keys = np.concatenate([c.y for c in clients])
    else:
        device = models.nets[min(models.nets)]
        with torch.no_grad():
            p = torch.softmax(device(torch.from_numpy(np.concatenate([c.x for c in clients]))), dim=1)
        keys = confidence_keys(p.max(dim=1).values.double().numpy(), cfg.n_bins)
    cuts = np.cumsum([len(c.y) for c in clients])[:-1]
    return {lv: np.split(importance_weights(keys, routing.rates[lv], cfg.floor), cuts) for lv in models.nets}


def run_fl(scenario: Scenario, cfg: FLConfig, progress: Callable[[str], None] | None = None) -> FLResult:
    """Train the node models of ``scenario`` federatedly with ``cfg.method``; see the module docstring.

    Parameters
    ----------
    scenario
        Base scenario (one model per node); its compute, links, workload and reward are kept.
    cfg
        The run's configuration.
    progress
        Called with one line of text per round and per re-estimation.

    Returns
    -------
    FLResult

    Raises
    ------
    ConfigError
        A node hosting several models, bad configuration values.
    DependencyNotInstalled
        torch or scikit-learn missing (``pip install 'idnbandit[fl]'``).
    """
    torch = require("torch", "torch")
    say = progress or (lambda _msg: None)
    levels = node_levels(scenario)
    nodes = list(levels)
    g_split, g_part, torch_seed, sim_seed = _seeds(cfg.seed)
    x, y = load_digits_images()
    split = stratified_split(x, y, seed=g_split)
    parts = dirichlet_partition(split.y_train, len(nodes), cfg.alpha, seed=g_part)
    clients = [Client(n, split.x_train[idx], split.y_train[idx]) for n, idx in zip(nodes, parts)]
    gen = torch.Generator().manual_seed(torch_seed)
    models = _Models(cfg.method, levels, gen)
    bounds = np.linspace(0, cfg.rounds, cfg.phases + 1).round().astype(int)
    routing, history = None, []
    for phase in range(cfg.phases):
        weights = _sample_weights(models, clients, routing, cfg, torch) \
            if (cfg.method == "delivery-aware" and routing is not None) else None
        lam = exit_loss_weights(routing.serving_rates() if routing is not None else np.ones(len(TIER_NAMES)),
                                cfg.floor)
        for rnd in range(bounds[phase], bounds[phase + 1]):
            if cfg.method == "local":
                for c in clients:
                    local_train(models.nets[c.name], c.x, c.y, cfg.train, gen)
            elif cfg.method == "early-exit":
                early_exit_round(models.nets["early-exit"], clients, [levels[c.name] for c in clients], lam,
                                 cfg.train, gen)
            else:
                agg = "fedprox" if cfg.method == "fedprox" else cfg.aggregation
                for lv, net in models.nets.items():
                    cl = clients if weights is None else [c._replace(w=w) for c, w in zip(clients, weights[lv])]
                    federated_round(net, cl, cfg.train, gen, method=agg)
            val = _record(models, split.x_val, split.y_val, {})
            acc = dict(zip(val.model_names, np.round(val.accuracies(), 4).tolist()))
            say(f"round {rnd + 1}/{cfg.rounds} [{cfg.method}] val accuracy " +
                " ".join(f"{n}={a:.3f}" for n, a in acc.items()))
        entry = {"phase": phase, "rounds_done": int(bounds[phase + 1]), "val_accuracy": acc}
        if cfg.method == "early-exit":
            entry["exit_weights"] = lam.tolist()
        if weights is not None:
            entry["trained_with_routing"] = routing.to_dict()
        if phase < cfg.phases - 1:
            vs = fl_scenario(scenario, "val.npz", name=f"{scenario.name}-fl-val")
            agent, res = learn_policy(vs, val, cfg.policy, cfg.policy_steps, sim_seed + phase)
            routing = estimate_routing_sim(vs, val, agent, cfg.routing_steps, sim_seed + phase,
                                           kind=cfg.key, n_bins=cfg.n_bins)
            entry["policy_val_mean_reward"] = float(res.mean_reward)
            entry["serving_rates"] = dict(zip(TIER_NAMES, np.round(routing.serving_rates(), 4).tolist()))
            say(f"phase {phase + 1}/{cfg.phases}: {cfg.policy} on validation models: mean reward "
                f"{res.mean_reward:.4f}; serving rates " +
                " ".join(f"{k}={v:.3f}" for k, v in entry["serving_rates"].items()))
        history.append(entry)
    meta = {"dataset": "digits (scikit-learn load_digits), held-out test split",
            "fl": {"method": cfg.method, "rounds": cfg.rounds, "alpha": cfg.alpha, "seed": cfg.seed,
                   "base_scenario": scenario.name},
            "architectures": {n: ("early-exit net, exit " + str(levels[n]) if cfg.method == "early-exit"
                                  else TIER_ARCHITECTURES[levels[n]]) for n in nodes},
            "train_samples": {c.name: len(c.y) for c in clients}}
    trace = _record(models, split.x_test, split.y_test, meta)
    out_scenario = fl_scenario(scenario, "trace.npz", name=f"{scenario.name}-fl-{cfg.method}",
                               description=f"{scenario.name} with node models trained by {cfg.method} "
                                           f"({cfg.rounds} rounds, Dirichlet alpha {cfg.alpha}, seed {cfg.seed})")
    weights_out = {n: models.node_state(n) for n in nodes}
    return FLResult(out_scenario, trace, weights_out, history, cfg)
