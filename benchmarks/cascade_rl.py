"""RL agents on Cascade-v0 (``idn-4tier``): numba Q-learning, SARSA(λ), DQN vs per-hop LinUCB and the
best static per-hop thresholds.

Usage::

    python benchmarks/cascade_rl.py [--train 100000] [--dqn-train 30000] [--eval 5000] [--seeds 5]
                                    [--agents qlearning,dqn,...] [--figures DIR] [--json PATH]
    python benchmarks/cascade_rl.py --merge a.json,b.json [--figures DIR]   # join parallel runs

Rows (``--agents``): ``linucb-per-hop``, ``linucb-tuned``, ``qlearning``, ``sarsa-lambda``, ``dqn``,
``dqn-fourier`` (the same DQN with Fourier features of ``maxprob``: ``fourier_index=0,
fourier_octaves=6``) and, on request, ``qlearning-coarse`` (the default 10 confidence bins).
``--thresholds 0.75,1.01,0.75`` skips the (slow) threshold search of a run whose rows are joined
with an earlier run's.

Protocol (same for every learner):

1. **Training**, online: ``--train`` Cascade-v0 episodes of one request each (``episode_length=1``;
   the first ``reset(seed=1000 + s)``, then unseeded resets continue that generator; agent seed
   ``s``), the agent acting with its own exploration and learning after every step (DQN:
   ``--dqn-train`` requests, its gradient steps are what costs time). Each request is an RL episode:
   a forward gives reward 0 and ``done=False`` (the next observation is the next stop of the same
   request); serving ends the env's one-request episode, which drains, so the serving step's reward
   is exactly that request's scenario reward, with ``done=True``. ``gamma = 1`` (an undiscounted
   optimal-stopping problem of at most 4 steps). One-request episodes start from an idle network:
   with the exact event core a request's reward arrives with its response, usually after later
   requests were decided, so a long episode could not credit a serving step with its own request's
   reward (idn-4tier's queues couple requests only weakly).
2. **Evaluation**, frozen and greedy: :func:`~idnbandit.envs.cascade_baselines.evaluate_cascade` on
   held-out seeds ``0 .. eval_seeds-1`` (``--eval`` requests each, the **same** streams for every
   policy: paired comparisons), no exploration, no learning.
3. The **best static per-hop thresholds** are chosen by
   :func:`~idnbandit.envs.cascade_baselines.best_per_hop_thresholds` *on the evaluation seeds
   themselves* (hindsight, so the baseline is as strong as the grid allows); ``--fine-thresholds``
   adds the same search on a 0.01-step grid.

**Per-hop LinUCB** (the bandit baseline): a :class:`~idnbandit.agents.LinUCB` with two arms (0 serve,
1 forward) on the Cascade observation plus a bias entry (7 features), ``alpha = 1``. It decides at
each stop independently; when the request is served, every decision taken for it (each stop's
context and action) is updated with the request's **final** reward. Greedy evaluation uses
``argmax θ_aᵀx`` (the learned means). **Tuned LinUCB** is the same learner with the ``alpha`` of
``--linucb-alphas`` whose evaluation mean is highest (chosen in hindsight on the evaluation seeds).

**Tabular agents** discretise the confidence (``maxprob``) with the edges of :func:`confidence_edges`
(``--conf-step`` wide from 0.3 to 0.99, then 0.995 and 0.999) × one bin per stop; see
docs/agents_rl.md for why the default edges (10 bins) are too coarse here.

Printed: mean reward per request on the evaluation seeds, mean and 95% Student-t interval over the
training seeds ``0 .. seeds-1``; the online (training) mean reward; the paired difference to per-hop
LinUCB (same training seed, same evaluation streams) and how many seeds are ahead; the gap to the
thresholds in %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time

import numpy as np

from idnbandit.agents import DQN, LinUCB, QLearning, SarsaLambda
from idnbandit.agents.qlearning import DEFAULT_CONFIDENCE_EDGES
from idnbandit.envs.cascade import CascadeEnv
from idnbandit.envs.cascade_baselines import PerHopThresholds, best_per_hop_thresholds, evaluate_cascade
from idnbandit.scenario import load_scenario

AGENTS = ("linucb-per-hop", "linucb-tuned", "qlearning", "sarsa-lambda", "dqn", "dqn-fourier")
EXTRA = ("qlearning-coarse",)  # Q-learning on the default 10 confidence bins (the diagnosis row)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
FINE_GRID = tuple(round(v, 2) for v in np.arange(0.5, 1.0, 0.01)) + (1.01,)


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95% Student-t interval (NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), math.nan
    return float(v.mean()), float(_T975[min(v.size - 1, len(_T975)) - 1] * v.std(ddof=1) / math.sqrt(v.size))


def confidence_edges(step: float = 0.02) -> tuple[float, ...]:
    """Confidence bin edges ``0.3, 0.3 + step, ... < 0.99`` then ``0.99, 0.995, 0.999``."""
    if not step > 0:
        raise ValueError(f"conf_step: {step!r} is not allowed; use a width > 0")
    below = (round(0.3 + i * step, 6) for i in range(int(0.69 / step) + 2))
    return tuple(v for v in below if v < 0.99 - 1e-9) + (0.99, 0.995, 0.999)


@dataclasses.dataclass(frozen=True)
class Config:
    scenario: str = "idn-4tier"
    """built-in scenario name or TOML path"""
    train: int = 100000
    """training requests per seed (one online episode) of the numba agents and LinUCB"""
    dqn_train: int = 30000
    """training requests per seed of DQN"""
    eval: int = 5000
    """evaluation requests per evaluation seed"""
    eval_seeds: int = 3
    """held-out evaluation seeds 0 .. eval_seeds-1"""
    seeds: int = 5
    """training seeds 0 .. seeds-1 (agent seed s, training stream 1000 + s)"""
    agents: tuple[str, ...] = AGENTS
    conf_step: float = 0.02
    """width of the tabular agents' confidence bins below 0.99"""
    linucb_alphas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)
    """alpha grid of the tuned LinUCB row"""
    fine_thresholds: bool = False
    """also search the thresholds on the 0.01-step grid (slow)"""
    thresholds: tuple[float, ...] | None = None
    """skip the search and use these per-hop thresholds (e.g. those printed by an earlier run)"""


def make_learner(kind: str, seed: int, n_obs: int, n_stops: int, *, conf_step: float = 0.02, alpha: float = 1.0):
    """The agent of ``kind`` for Cascade-v0 observations of length ``n_obs``."""
    tab = dict(epsilon=0.1, alpha=0.002, visit_power=1.0, gamma=1.0, hop_index=3, hop_bins=n_stops, q_init=1.0,
               confidence_edges=confidence_edges(conf_step), seed=seed)
    if kind == "qlearning":
        return QLearning(2, n_obs, **tab)
    if kind == "qlearning-coarse":
        return QLearning(2, n_obs, **{**tab, "confidence_edges": DEFAULT_CONFIDENCE_EDGES})
    if kind == "sarsa-lambda":
        return SarsaLambda(2, n_obs, lam=0.5, **tab)
    if kind == "dqn":
        return DQN(2, n_obs, **DQN_SETTINGS, seed=seed)
    if kind == "dqn-fourier":  # the same DQN reading 6 sin/cos octaves of maxprob (obs[0]) as well
        return DQN(2, n_obs, **DQN_SETTINGS, fourier_index=0, fourier_octaves=6, seed=seed)
    if kind in ("linucb-per-hop", "linucb-tuned"):
        return LinUCB(2, n_obs + 1, alpha=alpha, seed=seed)
    raise SystemExit(f"unknown agent {kind!r}; choose from {', '.join(AGENTS + EXTRA)}")


DQN_SETTINGS = dict(hidden=(64, 64), lr=1e-3, gamma=1.0, batch_size=64, buffer_size=20000, learning_starts=500,
                    train_freq=2, target_update=250, epsilon_start=1.0, epsilon_end=0.05, exploration_steps=10000)


def train(kind: str, scenario, requests: int, seed: int, **learner_kw):
    """Train ``kind`` online for ``requests`` requests; returns (agent, greedy policy, online mean reward)."""
    env = CascadeEnv(scenario, episode_length=1)  # one request per episode: the serving step pays its reward
    n_obs = env.observation_space.shape[0]
    agent = make_learner(kind, seed, n_obs, max(len(s) for s in env._stops), **learner_kw)
    obs, _ = env.reset(seed=1000 + seed)
    x = obs.astype(np.float64)
    total, served = 0.0, 0
    if kind.startswith("linucb"):
        path = []
        while served < requests:
            xb = np.append(x, 1.0)
            a = agent.act(xb)
            path.append((xb, a))
            obs, r, term, trunc, info = env.step(a)
            if info["served"]:
                total += r
                served += 1
                for xh, ah in path:  # every decision of the request learns its final reward
                    agent.update(xh, ah, r)
                path = []
                obs, _ = env.reset()
            x = obs.astype(np.float64)
        coef = agent.coef_

        def policy(o):
            return int(np.argmax(coef @ np.append(np.asarray(o, np.float64), 1.0)))

        return agent, policy, total / requests
    while served < requests:
        a = agent.act(x)
        obs, r, term, trunc, info = env.step(a)
        x2 = obs.astype(np.float64)
        agent.update(x, a, r, next_context=x2, done=bool(info["served"]))
        if info["served"]:
            total += r
            served += 1
            obs, _ = env.reset()
            x2 = obs.astype(np.float64)
        x = x2

    def policy(o):
        return agent.greedy_action(np.asarray(o, np.float64))

    return agent, policy, total / requests


def _train_eval(kind: str, scen, cfg: Config, eval_seeds, **learner_kw):
    """Per training seed: evaluation mean, online mean; and the seed-0 agent."""
    n = cfg.dqn_train if kind.startswith("dqn") else cfg.train
    ev, online, first = [], [], None
    for s in range(cfg.seeds):
        agent, policy, on = train(kind, scen, n, s, **learner_kw)
        ev.append(evaluate_cascade(policy, scen, cfg.eval, eval_seeds).mean_reward)
        online.append(on)
        first = agent if s == 0 else first
    return np.asarray(ev), np.asarray(online), first


def run(cfg: Config, out=print) -> dict:
    """Train and evaluate every agent of ``cfg``; returns the rows (see the module docstring) and baselines."""
    scen = load_scenario(cfg.scenario) if isinstance(cfg.scenario, str) else cfg.scenario
    eval_seeds = tuple(range(cfg.eval_seeds))
    t0 = time.perf_counter()
    if cfg.thresholds is None:
        th, th_eval = best_per_hop_thresholds(scen, cfg.eval, eval_seeds)
    else:
        th = tuple(cfg.thresholds)
        th_eval = evaluate_cascade(PerHopThresholds(th), scen, cfg.eval, eval_seeds)
    best = th_eval.mean_reward
    how = "given" if cfg.thresholds is not None else f"hindsight on eval seeds {eval_seeds}"
    out(f"best static per-hop thresholds ({how}): {th} -> {best:.4f} per request, "
        f"serve shares {tuple(round(v, 3) for v in th_eval.serve_share)} ({time.perf_counter() - t0:.0f} s)")
    local = evaluate_cascade(PerHopThresholds((0.0,) * len(th)), scen, cfg.eval, eval_seeds).mean_reward
    out(f"always serve at the origin: {local:.4f}")
    res = {"config": dataclasses.asdict(cfg), "thresholds": list(th), "thresholds_reward": best,
           "always_local": local, "rows": {}}
    if cfg.fine_thresholds:
        t0 = time.perf_counter()
        fth, fev = best_per_hop_thresholds(scen, cfg.eval, eval_seeds, grid=FINE_GRID)
        res["fine_thresholds"], res["fine_thresholds_reward"] = list(fth), fev.mean_reward
        out(f"best thresholds on the 0.01 grid (hindsight): {fth} -> {fev.mean_reward:.4f} "
            f"({time.perf_counter() - t0:.0f} s)")
    agents_0, linucb_runs = {}, {}
    for kind in cfg.agents:
        t0 = time.perf_counter()
        extra = {}
        if kind == "linucb-tuned":
            by_alpha = {a: linucb_runs[a] if a in linucb_runs else _train_eval(kind, scen, cfg, eval_seeds, alpha=a)
                        for a in cfg.linucb_alphas}
            a_best = max(by_alpha, key=lambda a: by_alpha[a][0].mean())
            ev, online, agent = by_alpha[a_best]
            extra = {"alpha": a_best, "alpha_means": {str(a): float(v[0].mean()) for a, v in by_alpha.items()}}
        elif kind in ("qlearning", "qlearning-coarse", "sarsa-lambda"):
            ev, online, agent = _train_eval(kind, scen, cfg, eval_seeds, conf_step=cfg.conf_step)
        else:
            ev, online, agent = _train_eval(kind, scen, cfg, eval_seeds)
            if kind == "linucb-per-hop":  # alpha = 1: reused by the tuned row's grid
                linucb_runs[1.0] = (ev, online, agent)
        agents_0[kind] = agent
        m, h = mean_ci(ev)
        mo, ho = mean_ci(online)
        row = {"eval": ev.tolist(), "mean": m, "ci": h, "online_mean": mo, "online_ci": ho,
               "gap_pct": 100.0 * (best - m) / abs(best), "seconds": time.perf_counter() - t0, **extra}
        ref = res["rows"].get("linucb-per-hop")
        paired = ""
        if ref is not None and kind != "linucb-per-hop":
            d = ev - np.asarray(ref["eval"])
            row["paired_diff"], row["paired_ci"] = mean_ci(d)
            row["seeds_ahead"] = int((d > 0).sum())
            paired = (f"   minus LinUCB (paired) {row['paired_diff']:+.4f} ± {row['paired_ci']:.4f} "
                      f"({row['seeds_ahead']}/{d.size} seeds ahead)")
        res["rows"][kind] = row
        out(f"{kind:15s} eval {m:.4f} ± {h:.4f}   online {mo:.4f} ± {ho:.4f}   gap to thresholds "
            f"{row['gap_pct']:+.2f}%{paired}   {''.join(f'   {k}={v}' for k, v in extra.items())}"
            f"   ({row['seconds']:.0f} s)")
    res["_agents_seed0"] = agents_0
    return res


def figures(res: dict, directory: str) -> list[str]:
    """Write ``cascade_rl_rewards.png`` and ``cascade_rl_qpolicy.png`` to ``directory`` (needs matplotlib)."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    paths = []
    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(8, 1.4 + 0.55 * len(rows)))
    for i, r in enumerate(rows.values()):
        ax.errorbar(r["mean"], i, xerr=0 if math.isnan(r["ci"]) else r["ci"], fmt="o", color="C0", capsize=4)
        ax.plot(r["eval"], [i] * len(r["eval"]), "x", color="C1", alpha=0.7)
    ax.axvline(res["thresholds_reward"], color="k", ls="--", label="best static per-hop thresholds (hindsight)")
    if "fine_thresholds_reward" in res:
        ax.axvline(res["fine_thresholds_reward"], color="grey", ls=":", label="same, 0.01 grid")
    ax.set_yticks(range(len(rows)), list(rows))
    ax.set_xlabel("mean reward per request, held-out (o: mean ± 95% CI; x: training seeds)")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    fig.legend(fontsize=8, loc="upper center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (1.4 + 0.55 * len(rows))))
    paths.append(os.path.join(directory, "cascade_rl_rewards.png"))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    q = res["_agents_seed0"].get("qlearning")
    if q is not None:
        edges = np.asarray(q.confidence_edges)
        lo = np.concatenate([[0.0], edges])
        hi = np.concatenate([edges, [1.0]])
        table = q.q_table_.reshape(len(edges) + 1, q.hop_bins, 2)
        visits = q.visits_.reshape(len(edges) + 1, q.hop_bins, 2).min(axis=2)  # both actions tried
        fig, axes = plt.subplots(1, q.hop_bins - 1, figsize=(4 * (q.hop_bins - 1), 3.2), sharey=True)
        for h, ax in enumerate(np.atleast_1d(axes)):
            seen = visits[:, h] > 0
            adv = table[:, h, 0] - table[:, h, 1]
            for j in np.flatnonzero(seen):
                ax.plot([max(lo[j], 0.3), hi[j]], [adv[j]] * 2, color="C2" if adv[j] >= 0 else "C3", lw=2)
            ax.axhline(0, color="k", lw=0.5)
            t = res["thresholds"][h]
            if t <= 1.0:
                ax.axvline(t, color="k", ls="--", lw=1)
            ax.set_title(f"stop {h}: hindsight threshold {t}")
            ax.set_xlabel("maxprob bin")
            ax.set_xlim(0.3, 1.0)
            ax.set_ylim(-0.3, 0.3)
        np.atleast_1d(axes)[0].set_ylabel("Q(serve) − Q(forward), seed 0")
        fig.tight_layout()
        paths.append(os.path.join(directory, "cascade_rl_qpolicy.png"))
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def markdown(res: dict) -> str:
    """The results as a markdown table (the one in docs/agents_rl.md)."""
    best = res["thresholds_reward"]
    lines = ["| policy | evaluation (greedy) | online during training | minus per-hop LinUCB (paired) | seeds ahead "
             "| gap to best thresholds |", "|---|---|---|---|---|---|",
             f"| always serve at the phone | {res['always_local']:.4f} | — | — | — | "
             f"{100 * (best - res['always_local']) / best:.2f} % |",
             f"| best static per-hop thresholds {tuple(res['thresholds'])} (hindsight) | {best:.4f} | — | — | — | 0 |"]
    if "fine_thresholds_reward" in res:
        f = res["fine_thresholds_reward"]
        lines.append(f"| same on the 0.01 grid {tuple(res['fine_thresholds'])} (hindsight) | {f:.4f} | — | — | — | "
                     f"{100 * (best - f) / best:.2f} % |")
    for name, r in res["rows"].items():
        pd = f"{r['paired_diff']:+.4f} ± {r['paired_ci']:.4f}" if "paired_diff" in r else "—"
        ahead = f"{r['seeds_ahead']}/{len(r['eval'])}" if "seeds_ahead" in r else "—"
        label = f"{name} (alpha={r['alpha']})" if "alpha" in r else name
        lines.append(f"| {label} | {r['mean']:.4f} ± {r['ci']:.4f} | {r['online_mean']:.4f} ± {r['online_ci']:.4f} "
                     f"| {pd} | {ahead} | {r['gap_pct']:.2f} % |")
    return "\n".join(lines)


def merge(paths) -> dict:
    """Join the ``--json`` files of runs with the same evaluation settings (e.g. agents run in parallel):
    the first file's baselines, every file's rows (a row present twice must be identical: same seeds)."""
    res = None
    for path in paths:
        with open(path) as f:
            r = json.load(f)
        if res is None:
            res = {**r, "rows": {}, "_agents_seed0": {}}
        for key in ("thresholds_reward", "always_local"):
            if abs(r[key] - res[key]) > 1e-12:
                raise SystemExit(f"{path}: {key} differs from the first file's; not the same evaluation")
        for name, row in r["rows"].items():
            if name in res["rows"] and res["rows"][name]["eval"] != row["eval"]:
                raise SystemExit(f"{path}: row {name} differs from an earlier file's")
            res["rows"].setdefault(name, row)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default=Config.scenario)
    p.add_argument("--train", type=int, default=Config.train)
    p.add_argument("--dqn-train", type=int, default=Config.dqn_train)
    p.add_argument("--eval", type=int, default=Config.eval)
    p.add_argument("--eval-seeds", type=int, default=Config.eval_seeds)
    p.add_argument("--seeds", type=int, default=Config.seeds)
    p.add_argument("--agents", default=",".join(AGENTS))
    p.add_argument("--conf-step", type=float, default=Config.conf_step)
    p.add_argument("--linucb-alphas", default=",".join(str(a) for a in Config.linucb_alphas))
    p.add_argument("--fine-thresholds", action="store_true", help="also search thresholds on a 0.01 grid (slow)")
    p.add_argument("--thresholds", default=None, help="comma-separated per-hop thresholds: skip the search")
    p.add_argument("--figures", default=None, help="directory for the two PNG figures (needs matplotlib)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--merge", default=None, help="comma-separated --json files: print their joint table, no run")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (tiny nets: 1 is fastest)")
    a = p.parse_args(argv)
    if a.merge:
        res = merge(a.merge.split(","))
        print(markdown(res))
        if a.figures:
            print("figures:", ", ".join(figures(res, a.figures)))
        return 0
    if "dqn" in a.agents:  # also dqn-fourier
        import torch

        torch.set_num_threads(a.threads)
    cfg = Config(a.scenario, a.train, a.dqn_train, a.eval, a.eval_seeds, a.seeds, tuple(a.agents.split(",")),
                 a.conf_step, tuple(float(v) for v in a.linucb_alphas.split(",")), a.fine_thresholds,
                 None if a.thresholds is None else tuple(float(v) for v in a.thresholds.split(",")))
    t0 = time.perf_counter()
    res = run(cfg)
    print(f"total {time.perf_counter() - t0:.0f} s\n")
    print(markdown(res))
    if a.figures:
        print("figures:", ", ".join(figures(res, a.figures)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({k: v for k, v in res.items() if not k.startswith("_")}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
