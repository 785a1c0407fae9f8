"""NeuralUCB / NeuralTS vs LinUCB where the reward is not linear in the context.

Usage::

    python benchmarks/neural_bandits.py [--problem deadline-edge] [--steps 2000] [--seeds 5]
    python benchmarks/neural_bandits.py --problem synthetic [--steps 1000] [--seeds 10]

``--problem deadline-edge`` (default): the built-in scenario ``deadline-edge`` (docs/scenarios.md),
driven request by request through the simulator's step API (:class:`idnbandit.sim.Engine`): a
camera with a weak local model (``segment`` trace, ``logreg-2f``, 74.6 %) may offload to a shared
edge GPU (``mlp-128x2``, 97.6 %, price 0.1) whose other tenants keep it 75 % busy; an answer later
than 100 ms counts as wrong. The context is ``(maxprob, margin, entropy, backlog_camera,
backlog_edge, 1)``. ``E[r_edge | x]`` is a cliff in ``backlog_edge`` (on time below ~60 ms of
backlog, worthless above ~80 ms) multiplied by the edge model's accuracy, and the best decision is
an interaction "local model unsure AND edge queue short": no linear function of the context per
option represents it. Every agent sees the same request stream per seed (engine seed = agent seed
= the seed). Feedback is causal (the event core): a request's reward reaches the learner when its
answer arrives, after later requests were decided (``Engine.completed``; the last requests finish
with ``Engine.drain``). Printed are the mean realised reward per request and the regret to the
per-request oracle (sum of the best decision-time estimate of each request,
``Engine.counterfactual_rewards``, minus the realised rewards, as ``simulate()`` reports it), plus
two hindsight rules searched on the same seeds: the best static confidence threshold (offload iff
maxprob < t) and the best pair (offload iff maxprob < t and backlog_edge < b).

``--problem synthetic``: the first synthetic benchmark of the NeuralUCB paper (Zhou, Li, Gu, ICML
2020, §7.1) in one-context / K-options form: contexts uniform on the unit sphere in R^3 (plus a
bias entry), K = 4 options with hidden unit vectors ``θ_a``, reward ``10 (θ_aᵀx)² + N(0, 0.1²)``.
``E[r_a | x]`` is even in ``x``, so each option's best linear fit is nearly constant.

Mean and 95% Student-t interval over seeds ``0 .. seeds-1``; the last column of each agent is the
paired difference to the first agent (same requests).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from idnbandit.agents import LinUCB, NeuralTS, NeuralUCB

_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
D, K = 3, 4
SCENARIO = "deadline-edge"
#: NeuralUCB / NeuralTS settings on the scenario (chosen for < 2 min per 2,000-request seed on a loaded CPU)
NEURAL_SCENARIO = {"hidden": (32,), "ridge": 1e-3, "nu": 3.0, "lr": 0.1, "train_steps": 10, "batch_size": 64,
                   "dense_rounds": 100, "train_every": 5}
NEURAL_SYNTHETIC = {"hidden": (32,), "ridge": 1e-3, "nu": 1.0, "lr": 0.1, "train_steps": 10, "batch_size": 64,
                    "dense_rounds": 200, "train_every": 5}
THRESHOLDS = tuple(round(0.30 + 0.05 * i, 2) for i in range(15)) + (1.01,)
#: backlog entries of the context are divided by this (seconds) for every learner (see context_scale)
BACKLOG_UNIT_S = 0.1
BACKLOGS = (0.02, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 10.0)


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95% Student-t interval (NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(_T975[min(v.size - 1, len(_T975)) - 1] * v.std(ddof=1) / math.sqrt(v.size))


# ---------------------------------------------------------------------------------- synthetic problem
def quadratic_problem(steps: int, seed: int):
    """Contexts (steps, D+1) with a bias entry, expected rewards (steps, K) and noisy rewards (steps, K)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(K, D))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    x = rng.normal(size=(steps, D))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    mean = 10.0 * (x @ theta.T) ** 2
    noisy = mean + 0.1 * rng.normal(size=mean.shape)
    return np.hstack([x, np.ones((steps, 1))]), mean, noisy


def make(kind: str, seed: int, n_actions: int = K, n_features: int = D + 1, neural: dict | None = None):
    """Agent ``kind``: ``linucb`` / ``linucb(alpha=A)`` / ``neural-ucb`` / ``neural-ts``."""
    if kind.startswith("linucb"):
        alpha = float(kind[len("linucb(alpha="):-1]) if "(" in kind else 1.0
        return LinUCB(n_actions, n_features, alpha=alpha, seed=seed)
    cls = {"neural-ucb": NeuralUCB, "neural-ts": NeuralTS}[kind]
    return cls(n_actions, n_features, seed=seed, **(NEURAL_SYNTHETIC if neural is None else neural))


def play(kind: str, steps: int, seed: int) -> tuple[float, float]:
    """(mean reward per round, cumulative regret) of ``kind`` on the synthetic problem of ``seed``."""
    xs, mean, noisy = quadratic_problem(steps, seed)
    agent = make(kind, seed)
    total, regret = 0.0, 0.0
    for t in range(steps):
        a = agent.act(xs[t])
        total += mean[t, a]
        regret += mean[t].max() - mean[t, a]
        agent.update(xs[t], a, float(noisy[t, a]))
    return total / steps, regret


# ---------------------------------------------------------------------------------- the scenario
def _engine(seed: int, scenario: str = SCENARIO):
    from idnbandit.sim.engine import Engine

    eng = _ENGINES.get(scenario)
    if eng is None:
        eng = _ENGINES[scenario] = Engine(scenario, seed=seed)
    return eng.clone(seed)  # the compiled scenario is reused; the stream is the seed's


_ENGINES: dict = {}


def context_scale(eng) -> np.ndarray:
    """Per-entry factors applied to every learner's context: backlogs in units of ``BACKLOG_UNIT_S``."""
    return np.array([1.0 / BACKLOG_UNIT_S if n.startswith("backlog") else 1.0 for n in eng.context_names])


def play_scenario(policy, steps: int, seed: int, scenario: str = SCENARIO) -> tuple[float, float]:
    """(mean reward per request, regret to the per-request oracle) of ``policy`` on ``steps`` requests.

    ``policy`` is an agent (it sees the context times :func:`context_scale`), a function
    ``context -> option`` (a fixed rule, raw context) or ``"oracle"`` (the option with the best
    decision-time estimate). Request stream and background load come from ``seed``. Feedback is causal, as in :func:`~idnbandit.sim.simulate`: a request's observed reward
    reaches the agent when its response arrives (or its deadline passes), just before the first
    decision after that, usually after later requests were decided (``Engine.completed``). After the
    last decision the requests in flight finish (``Engine.drain``) and their feedback is delivered.
    The reward is the realised (true) reward of every request; the regret is, as in
    :class:`~idnbandit.sim.RunResult`, the sum over requests of the best decision-time estimate
    (``Engine.counterfactual_rewards``) minus the realised reward.
    """
    eng = _engine(seed, scenario)
    learn = hasattr(policy, "update")
    oracle = isinstance(policy, str) and policy == "oracle"
    scale = context_scale(eng)
    contexts: dict[int, np.ndarray] = {}  # request number -> context the agent saw (until its feedback)
    best = 0.0

    def deliver(done) -> float:
        got = 0.0
        for c in done:
            got += c.outcome.reward
            if learn:
                policy.update(contexts.pop(c.request), c.option, c.feedback_reward, rewards=c.feedback_rewards)
        return got

    total = 0.0
    for _ in range(steps):
        x = eng.next_request()
        total += deliver(eng.completed())  # feedback due before this decision
        cf = eng.counterfactual_rewards()
        best += float(cf.max())
        if learn:
            x *= scale
            k = int(policy.act(x))
        elif oracle:
            k = int(np.argmax(cf))
        else:
            k = int(policy(x))
        g = eng.apply(k)
        if learn:
            contexts[g] = x
    eng.drain()  # the requests in flight finish; their feedback arrives
    total += deliver(eng.completed())
    return total / steps, best - total


def scenario_agent(kind: str, seed: int, scenario: str = SCENARIO):
    eng = _engine(seed, scenario)
    return make(kind, seed, eng.n_options, eng.n_features, NEURAL_SCENARIO)


def best_rules(steps: int, seeds: list[int], scenario: str = SCENARIO) -> dict[str, tuple[str, list]]:
    """Always local, and the hindsight rules on ``seeds``: best threshold on maxprob, best (maxprob,
    backlog_edge) pair (each searched on a grid for the best mean reward over ``seeds``)."""
    eng = _engine(seeds[0], scenario)
    i_mp, i_be = eng.context_names.index("maxprob"), eng.context_names.index(f"backlog_s[{eng.n_options - 1}]")
    out = {"always local": ("", [play_scenario(lambda x: 0, steps, s, scenario) for s in seeds])}
    for label, grid in (("best static threshold", [(t, 10.0) for t in THRESHOLDS]),
                        ("best static (threshold, backlog) pair", [(t, b) for t in THRESHOLDS for b in BACKLOGS])):
        best = None
        for t, b in grid:
            def rule(x, t=t, b=b):
                return eng.n_options - 1 if (x[i_mp] < t and x[i_be] < b) else 0
            res = [play_scenario(rule, steps, s, scenario) for s in seeds]
            score = float(np.mean([r[0] for r in res]))
            if best is None or score > best[0]:
                best = (score, f"maxprob < {t}" + (f" and backlog < {b * 1e3:.0f} ms" if b < 10 else ""), res)
        out[label] = (best[1], best[2])
    return out


def linearity_check(steps: int = 6000, seed: int = 0, scenario: str = SCENARIO, eval_steps: int = 2000,
                    eval_seeds: tuple[int, ...] = (1, 2, 3)) -> dict:
    """How far ``E[r_a | x]`` is from linear on ``scenario`` (the docs' figures; needs scikit-learn).

    Logs ``steps`` requests of ``seed`` under a policy that offloads at random (probability 0.3),
    with the **realised** reward of the option each request took (``Engine.completed`` after
    ``Engine.drain``: true outcomes, queueing behind later arrivals included). Per option, on the
    requests that took it, fits the best linear model of the reward on the learners' context (least
    squares) and a flexible one (gradient-boosted trees); returns the R² of both for the edge option
    (linear in-sample, trees 5-fold cross-validated), the realised edge reward per backlog bin next
    to the linear fit's mean prediction there, the same R² on the decision-time estimates
    (``Engine.counterfactual_rewards``, every request, both options), and the realised mean reward of
    the greedy policy of each fit, of the per-request oracle (argmax of the decision-time estimates)
    and of always-local, each run on the held-out streams ``eval_seeds`` (``eval_steps`` requests
    each; the policy's own offloads load the edge).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import cross_val_predict

    eng = _engine(seed, scenario)
    scale, rng = context_scale(eng), np.random.default_rng(seed)
    n_opt = eng.n_options
    xs, est = np.zeros((steps, eng.n_features)), np.zeros((steps, n_opt))
    took, real = np.zeros(steps, np.int64), np.full(steps, np.nan)
    done = []
    for t in range(steps):
        xs[t] = eng.next_request() * scale
        est[t] = eng.counterfactual_rewards()
        took[t] = n_opt - 1 if rng.random() < 0.3 else 0
        eng.apply(int(took[t]))
        done += eng.completed()
    eng.drain()
    for c in done + eng.completed():
        real[c.request] = c.outcome.reward
    e = n_opt - 1

    def tree():
        return HistGradientBoostingRegressor(max_iter=200, max_depth=4, random_state=0)

    def r2(y, pred):
        return 1.0 - float(((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())

    lin_w = [np.linalg.lstsq(xs[took == a], real[took == a], rcond=None)[0] for a in range(n_opt)]
    trees = [tree().fit(xs[took == a], real[took == a]) for a in range(n_opt)]
    xe, ye = xs[took == e], real[took == e]
    lin_e = xe @ lin_w[e]
    flex_e = cross_val_predict(tree(), xe, ye, cv=5)
    est_lin = xs @ np.linalg.lstsq(xs, est[:, e], rcond=None)[0]
    est_flex = cross_val_predict(tree(), xs, est[:, e], cv=5)

    backlog = xe[:, eng.context_names.index(f"backlog_s[{e}]")] * BACKLOG_UNIT_S
    bins = []
    for lo, hi in ((0.0, 1e-9), (1e-9, 0.03), (0.03, 0.06), (0.06, 0.08), (0.08, 0.12), (0.12, np.inf)):
        m = (backlog >= lo) & (backlog < hi)
        bins.append((lo, hi, int(m.sum()), float(ye[m].mean()), float(lin_e[m].mean())))

    def greedy(predict):
        return lambda x: int(np.argmax(predict(x * scale)))

    lin_policy = greedy(lambda z: np.array([z @ w for w in lin_w]))
    flex_policy = greedy(lambda z: np.array([float(m.predict(z[None])[0]) for m in trees]))

    def held_out(policy) -> float:
        return float(np.mean([play_scenario(policy, eval_steps, s, scenario)[0] for s in eval_seeds]))

    return {"linear policy": held_out(lin_policy), "flexible policy": held_out(flex_policy),
            "per-request oracle (estimates)": held_out("oracle"), "always local": held_out(lambda x: 0),
            "R2 linear (edge, realised)": r2(ye, lin_e), "R2 flexible (edge, realised, cross-validated)": r2(ye, flex_e),
            "R2 linear (edge, estimates)": r2(est[:, e], est_lin),
            "R2 flexible (edge, estimates, cross-validated)": r2(est[:, e], est_flex),
            "offloaded (logged)": float((took == e).sum()), "bins": bins}


def _report(rows: list, title: str) -> None:
    print(title)
    first = None
    for label, res, secs in rows:
        m, h = mean_ci([r[0] for r in res])
        rm, rh = mean_ci([r[1] for r in res])
        line = f"{label:44s} reward {m:.4f} ± {h:.4f}   regret {rm:7.1f} ± {rh:5.1f}"
        if first is None:
            first = res
        else:  # paired over seeds (same requests): the sharper comparison
            dm, dh = mean_ci([r[0] - f[0] for r, f in zip(res, first, strict=True)])
            line += f"   minus first: {dm:+.4f} ± {dh:.4f}"
        line += f"   per seed {[round(float(r[0]), 4) for r in res]}"
        if secs is not None:
            line += f"   ({secs:.1f} s per seed)"
        print(line, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problem", choices=[SCENARIO, "synthetic"], default=SCENARIO)
    p.add_argument("--steps", type=int, default=None, help="requests / rounds (default 2000 / 1000)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--agents", default=None,
                   help="comma-separated; default: LinUCB alpha grid + neural-ucb + neural-ts (scenario)")
    p.add_argument("--no-rules", action="store_true", help="skip the hindsight threshold searches")
    p.add_argument("--linearity", action="store_true", help="only print the linear-vs-flexible fit check")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # tiny networks: intra-op threads only add overhead
    seeds = list(range(a.seeds))
    if a.problem == "synthetic":
        steps = a.steps or 1000
        agents = (a.agents or "linucb,neural-ucb,neural-ts").split(",")
        rows = []
        for kind in agents:
            t0 = time.perf_counter()
            res = [play(kind, steps, s) for s in seeds]
            rows.append((kind, res, (time.perf_counter() - t0) / len(seeds)))
        _report(rows, f"quadratic bandit 10(θ_aᵀx)², d={D}, K={K}, {steps} rounds, seeds 0..{a.seeds - 1}")
        return 0
    if a.linearity:
        res = linearity_check(a.steps or 6000)
        print("offloaded requests of the log (realised edge reward):")
        for lo, hi, n, mean, fit in res.pop("bins"):
            print(f"backlog_edge in [{lo * 1e3:.0f}, {hi * 1e3:.0f}) ms: {n:5d} requests, E[r_edge] {mean:+.3f}, "
                  f"linear fit {fit:+.3f}")
        print("held-out realised mean reward (seeds 1-3, 2,000 requests each):")
        for k, v in res.items():
            print(f"{k}: {v:.4f}")
        return 0
    steps = a.steps or 2000
    agents = (a.agents or "linucb(alpha=1),linucb(alpha=0.1),linucb(alpha=0.3),linucb(alpha=3),"
                          "neural-ucb,neural-ts").split(",")
    rows = []
    for kind in agents:
        t0 = time.perf_counter()
        res = [play_scenario(scenario_agent(kind, s), steps, s) for s in seeds]
        rows.append((kind, res, (time.perf_counter() - t0) / len(seeds)))
        print(f"  {kind}: {mean_ci([r[0] for r in res])[0]:.4f}", flush=True)
    if not a.no_rules:
        for label, (rule, res) in best_rules(steps, seeds).items():
            rows.append((f"{label} ({rule})" if rule else label, res, None))
    oracle_note = "regret: to the per-request oracle (best option given the queues each request meets)"
    _report(rows, f"{SCENARIO}: {steps} requests, seeds 0..{a.seeds - 1}; {oracle_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
