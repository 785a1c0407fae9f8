"""Cross-check idnbandit.ope's estimators against Open Bandit Pipeline's on the same synthetic logs.

OBP is not an idnbandit dependency (its pinned requirements do not build on Python 3.11 here); to
run this, install it beside idnbandit without its pins, e.g.::

    python -m venv /tmp/obp && /tmp/obp/bin/pip install --no-deps obp
    /tmp/obp/bin/pip install "torch>=2.2,<2.14" numpy scipy scikit-learn pandas matplotlib seaborn \
        tqdm pyyaml mypy_extensions numba gymnasium river
    PYTHONPATH=. /tmp/obp/bin/python benchmarks/ope_vs_obp.py

Both sides get the same log, target probabilities and reward-model predictions (idnbandit's
cross-fitted ridge), so the estimates must agree to rounding. Prints the largest difference per
estimator and exits 1 if any exceeds 1e-9 (relative).
"""

from __future__ import annotations

import sys

import numpy as np


def main() -> int:
    from obp.ope import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedInverseProbabilityWeighting,
        SwitchDoublyRobust,
    )

    from idnbandit.ope import RidgeRewardModel, evaluate, synthetic_log

    tau = 4.0  # OBP 0.4.1 has no clipped-weight DR (only shrinkage): dr-clip is checked in tests only
    worst = {}
    for seed in range(5):
        for logging in ("softmax", "egreedy", "uniform"):
            log, _ = synthetic_log(5000, n_options=4, n_features=3, logging=logging, seed=seed)
            rng = np.random.default_rng(seed + 100)
            pi = rng.dirichlet(np.ones(4) * 0.3, size=log.n_rows)
            model = RidgeRewardModel(4, 3)  # the same fit evaluate() makes, for OBP's inputs
            model.partial_fit(log.request, log.x, log.action, log.reward)
            q = model.predict(log.request, log.x)
            ours = {e.estimator: e.value for e in evaluate(log, lambda x, pi=pi: pi, reward_model=RidgeRewardModel(4, 3), n_boot=0,
                                                            tau=tau)}
            kw = dict(reward=log.reward, action=log.action, position=np.zeros(log.n_rows, int),
                      pscore=log.propensity, action_dist=pi[:, :, None])
            qq = q[:, :, None]
            theirs = {
                "ips": InverseProbabilityWeighting().estimate_policy_value(**kw),
                "snips": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw),
                "dm": DirectMethod().estimate_policy_value(position=kw["position"], action_dist=kw["action_dist"],
                                                           estimated_rewards_by_reg_model=qq),
                "dr": DoublyRobust().estimate_policy_value(**kw, estimated_rewards_by_reg_model=qq),
                "switch-dr": SwitchDoublyRobust(tau=tau).estimate_policy_value(
                    **kw, estimated_rewards_by_reg_model=qq),
            }
            for name, v in theirs.items():
                rel = abs(ours[name] - v) / max(abs(v), 1e-12)
                worst[name] = max(worst.get(name, 0.0), rel)
    print("estimator   largest relative difference to OBP (15 logs)")
    for name, rel in worst.items():
        print(f"{name:10s}  {rel:.2e}")
    return 0 if max(worst.values()) <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
