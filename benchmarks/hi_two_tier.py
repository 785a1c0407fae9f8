"""HI learners on the built-in ``hi-two-tier`` scenario: gap to the best threshold and regret slopes.

Usage::

    python benchmarks/hi_two_tier.py [--steps 50000] [--seeds 5] [--agents hil-f:full,hil-n,...]

Each learner runs through the simulator (``sim.simulate``) on seeds 0..seeds-1 (common random
numbers: every learner sees the same requests for a seed), under the feedback it is designed for:
an agent name may carry ``:mode`` (``hil-f:full``); without it the scenario's own
``label_on_forward`` feedback is used (``--feedback`` overrides that default).

Printed per learner, as mean and 95% confidence interval over the seeds (Student t):

* **gap** — mean reward of the best static threshold in hindsight on the same requests minus the
  learner's (reward = correct − β·offloaded, so this is the excess average loss);
* **slope** — log–log slope of the cumulative regret ``R(t)`` over the second half of the run
  (ordinary least squares of ln R on ln t at the curve points with t >= T/2). ``R(t)`` is the
  regret at horizon t in the sense of the HI papers' bounds: the reward of the best fixed
  threshold *in hindsight of the first t requests* minus the learner's reward on them;
* **mean-curve slope** — the same fit on the regret curve averaged over the seeds, which averages
  out much of the noise of one run before the fit (the per-seed spread says how fragile one curve is);
* **R(T)** — the cumulative regret at the horizon;
* **mixed decisions** (HIL-F, HIL-N, Hedge-HI) — the same slope for the regret of the learner's
  mixed decisions: the requests are replayed through its kernels, each feedback delivered just
  before the same decision as in the simulator (causal feedback; checked to reproduce the
  simulator's decisions exactly), and each request counts ``acc·r_local + (1 − acc)·r_forward`` with
  ``acc`` the accept probability the learner used. That is the regret in expectation over the
  learner's own coin flips — the quantity the HI bounds are about — without their noise.

The bound check compares each slope interval (realised and mixed decisions) with the issue's
limits (0.6 with full feedback, 0.77 for label-efficient learners): "holds" if the whole interval
is below, "exceeded" if the whole interval is above, "inconclusive" otherwise. ``hi-two-tier`` has no latency term, so every
option's reward is fixed by the trace and the threshold sweep is exact.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np
from numba import njit

from idnbandit.agents import make_agent
from idnbandit.scenario import load_scenario
from idnbandit.sim import n_features, n_options, simulate
from idnbandit.sim.hindsight import best_threshold, counterfactual_stream

LEARNERS = ["hil-f:full", "hil-f", "hil-n", "hedge-hi", "hedge-hi-restart", "hi-lcb", "hi-lcb-lite", "exp4",
            "linucb"]
# the slope limits: full feedback (HIL-F's √T bound) and label-efficient learners (T^{2/3} bounds)
SLOPE_LIMITS = {"full": 0.6, "label_on_forward": 0.77}
# two-sided 97.5% Student t quantiles for 1..30 degrees of freedom (scipy is not a dependency)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the two-sided 95% Student-t confidence interval (NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), math.nan
    q = _T975[min(v.size - 1, len(_T975)) - 1]
    return float(v.mean()), float(q * v.std(ddof=1) / math.sqrt(v.size))


def tail_slope(t: np.ndarray, regret: np.ndarray, start: float = 0.5) -> float:
    """OLS slope of ln regret on ln t over the points with t >= start·t[-1] (regret floored at 1e-9)."""
    m = t >= start * t[-1]
    return float(np.polyfit(np.log(t[m]), np.log(np.maximum(regret[m], 1e-9)), 1)[0])


def prefix_best_reward(p: np.ndarray, rewards: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Total reward of the best static threshold in hindsight of the first t requests, for each t in ``ts``."""
    return np.array([best_threshold(p[:t], rewards[:t])[1].sum() for t in ts])


@njit(cache=True)
def replay_accept_probs(select, update, state, p, act_rec, fb_r, fb_rs, deliver_before, delivery_order, u,
                        acc_out, act_out):
    """Replay ``hi-two-tier`` requests through an exponential-weights HI learner's kernels.

    Feedback is replayed exactly as the simulator delivered it (causal feedback): request ``g``'s
    observed reward ``fb_r[g]`` / ``fb_rs[g]`` (NaN where not observed) is passed to ``update`` just
    before decision ``deliver_before[g]`` (``p.shape[0]``: after the last decision), deliveries in
    ``delivery_order``. Records the action and the accept probability the learner's ``select``
    cached in its state (``fw[5]``, HIL-F / HIL-N / Hedge-HI), i.e. the learner's mixed decision.
    """
    x = np.empty(1)
    xu = np.empty(1)
    fw = state[5]
    n = p.shape[0]
    j = 0
    for t in range(n + 1):
        while j < delivery_order.shape[0] and deliver_before[delivery_order[j]] <= t:
            g = delivery_order[j]
            xu[0] = p[g]
            update(state, xu, act_rec[g], fb_r[g], fb_rs[g])
            j += 1
        if t == n:
            break
        x[0] = p[t]
        a = select(state, x, u[t])
        act_out[t] = a
        acc_out[t] = fw[5]


def delivery_schedule(rec: dict, feedback) -> tuple[np.ndarray, np.ndarray]:
    """From a run's request records: the decision each feedback was delivered before, and the delivery order.

    The simulator delivers request g's feedback just before the first decision at a time >= its
    completion time (``feedback.delay_s = 0``, the scenario's setting), in completion order; the
    order is taken from the records' delivery log and checked to be consistent with those times.
    """
    if feedback.delay_s or feedback.delay_requests:
        raise RuntimeError("the replay assumes feedback.delay_s = 0 and delay_requests = 0")
    t_dec, t_done = rec["t_decision"], rec["t_complete"]
    before = np.searchsorted(t_dec, t_done, side="left").astype(np.int64)  # completions at time <= T come first
    if (rec["order_delivered"] < 0).any():
        raise RuntimeError("a request's feedback was not delivered")
    order = np.argsort(rec["order_delivered"], kind="stable").astype(np.int64)
    if (np.diff(before[order]) < 0).any():
        raise RuntimeError("delivery log inconsistent with completion times")
    return before, order


def expected_regret(name, k, f, seed, p, rs, rec, feedback, ts, prefix_best):
    """Regret at ``ts`` of the learner's mixed decisions (its accept probabilities), or None.

    This is the regret the HI bounds speak of (in expectation over the learner's own coin flips);
    it removes the noise of those flips from the curve. Returns None for learners without a cached
    accept probability, and raises if the replay does not reproduce the simulator's decisions exactly.
    """
    if name not in ("hil-f", "hil-n", "hedge-hi"):
        return None
    agent = make_agent(name, k, f, seed=seed)
    kern = agent.kernels()
    u = agent.rng.random((p.shape[0], kern.n_uniforms))
    acc, act = np.empty(p.shape[0]), np.empty(p.shape[0], np.int64)
    before, order = delivery_schedule(rec, feedback)
    replay_accept_probs(kern.select, kern.update, kern.state, p, rec["option"], rec["feedback_r"],
                        np.ascontiguousarray(rec["feedback_rewards"]), before, order, u, acc, act)
    if not np.array_equal(act, rec["option"]):
        raise RuntimeError(f"{name}: the replay does not reproduce the simulator's run "
                           f"(first difference at request {int(np.argmax(act != rec['option']))})")
    mixed = np.cumsum(acc * rs[:, 0] + (1.0 - acc) * rs[:, -1])
    return prefix_best - mixed[ts - 1]


def check_limit(mean: float, half_width: float, limit: float | None) -> str:
    """'holds' if the 95% interval lies below ``limit``, 'exceeded' if above, else 'inconclusive'."""
    if limit is None:
        return ""
    if mean + half_width <= limit:
        return f"<= {limit}: holds"
    if mean - half_width > limit:
        return f"<= {limit}: exceeded"
    return f"<= {limit}: inconclusive"


def parse_agent(spec: str, default_mode: str) -> tuple[str, str]:
    name, _, mode = spec.partition(":")
    return name, mode or default_mode


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..seeds-1")
    ap.add_argument("--feedback", default=None, help="default feedback mode for agents without ':mode'")
    ap.add_argument("--agents", default=",".join(LEARNERS))
    ap.add_argument("--points", type=int, default=200, help="curve points per run")
    args = ap.parse_args(argv)
    s0 = load_scenario("hi-two-tier")
    default_mode = args.feedback or s0.feedback.mode
    specs = [parse_agent(a, default_mode) for a in args.agents.split(",")]
    k, f = n_options(s0), n_features(s0)
    print(f"hi-two-tier, {args.steps} requests, seeds 0..{args.seeds - 1}, default feedback {default_mode}")
    runs: dict[tuple[str, str], list] = {spec: [] for spec in specs}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        p, rs = counterfactual_stream(s0, args.steps, seed)
        theta, best_r = best_threshold(p, rs)
        prefix_best = None
        for name, mode in specs:
            s = dataclasses.replace(s0, feedback=dataclasses.replace(s0.feedback, mode=mode))
            agent = make_agent(name, k, f, seed=seed)
            res = simulate(s, agent, args.steps, seed=seed, curve_points=args.points, record_requests=True)
            rec = res.requests
            # the learner's reward per request in decision order (the run's curves are sampled by
            # completed requests, which under causal feedback is a different order)
            realised = rec["reward"]
            if not (np.array_equal(rec["g"], np.arange(args.steps))
                    and np.allclose(realised, rs[np.arange(args.steps), rec["option"]], rtol=0, atol=1e-12)
                    and np.isclose(realised.mean(), res.mean_reward, rtol=0, atol=1e-12)):
                raise RuntimeError(f"{name}: recorded rewards differ from the counterfactual stream")
            t = res.curve_t
            if prefix_best is None:
                prefix_best = prefix_best_reward(p, rs, t)
            regret = prefix_best - np.cumsum(realised)[t - 1]
            e_regret = expected_regret(name, k, f, seed, p, rs, rec, s.feedback, t, prefix_best)
            runs[(name, mode)].append((t, regret, best_r.mean() - res.mean_reward, e_regret))
        print(f"  seed {seed}: best threshold θ* = {theta:.3f} earns {best_r.mean():.4f}/request "
              f"({time.perf_counter() - t0:.0f} s)")

    print(f"\n{'agent':>17} {'feedback':>16} {'gap mean ± 95% CI':>19} {'slope mean ± 95% CI':>21} "
          f"{'mean-curve slope':>16} {'R(T) mean':>9}  slope limit")
    for (name, mode), rr in runs.items():
        t = rr[0][0]
        gap_m, gap_h = mean_ci([r[2] for r in rr])
        slopes = [tail_slope(t, r[1]) for r in rr]
        sl_m, sl_h = mean_ci(slopes)
        curve_slope = tail_slope(t, np.mean([r[1] for r in rr], axis=0))
        limit = SLOPE_LIMITS.get(mode) if name in ("hil-f", "hil-n", "hedge-hi") else None
        verdict = check_limit(sl_m, sl_h, limit)
        print(f"{name:>17} {mode:>16} {gap_m:9.4f} ± {gap_h:6.4f} {sl_m:11.3f} ± {sl_h:6.3f} "
              f"{curve_slope:16.3f} {np.mean([r[1][-1] for r in rr]):9.1f}  {verdict}")
        print(f"{'':>17} {'per seed':>16} gaps {' '.join(f'{r[2]:.4f}' for r in rr)}; "
              f"slopes {' '.join(f'{v:.2f}' for v in slopes)}")
        if rr[0][3] is not None:
            e_slopes = [tail_slope(t, r[3]) for r in rr]
            e_m, e_h = mean_ci(e_slopes)
            e_curve = tail_slope(t, np.mean([r[3] for r in rr], axis=0))
            print(f"{'':>17} {'mixed decisions':>16} slope {e_m:.3f} ± {e_h:.3f}, mean-curve {e_curve:.3f}, "
                  f"R(T) {np.mean([r[3][-1] for r in rr]):.1f}; per seed {' '.join(f'{v:.2f}' for v in e_slopes)}"
                  f"  {check_limit(e_m, e_h, limit)}")


if __name__ == "__main__":
    main()
