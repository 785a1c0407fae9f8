"""Off-policy estimators written row by row from the papers' formulas (slow, obvious; for tests).

Dudík, Langford & Li 2011 (DM, IPS, DR); Swaminathan & Joachims 2015 (SNIPS); Open Bandit
Pipeline's SwitchDoublyRobust (switch on the logged action's weight); clipped-weight DR.
"""

from __future__ import annotations

import numpy as np


def reference_estimates(pi, a, p, r, q, tau=10.0, clip=10.0) -> dict:
    """Point estimates; pi (n, K) target probabilities, a (n,), p (n,), r (n,), q (n, K)."""
    n = len(a)
    dm = ips = dr = sw = dc = 0.0
    sn_num = sn_den = 0.0
    for i in range(n):
        rho = pi[i][a[i]] / p[i]
        dm_i = sum(pi[i][k] * q[i][k] for k in range(len(pi[i])))
        resid = r[i] - q[i][a[i]]
        dm += dm_i
        ips += rho * r[i]
        sn_num += rho * r[i]
        sn_den += rho
        dr += dm_i + rho * resid
        sw += dm_i + (rho * resid if rho <= tau else 0.0)
        dc += dm_i + min(rho, clip) * resid
    return {"dm": dm / n, "ips": ips / n, "snips": sn_num / sn_den, "dr": dr / n, "switch-dr": sw / n,
            "dr-clip": dc / n}


def reference_ridge(x, a, r, n_options, l2):
    """Per-option ridge on [x, 1] by the normal equations, one option at a time."""
    d = x.shape[1] + 1
    theta = np.zeros((n_options, d))
    for k in range(n_options):
        rows = a == k
        phi = np.column_stack([x[rows], np.ones(rows.sum())])
        theta[k] = np.linalg.solve(phi.T @ phi + l2 * np.eye(d), phi.T @ r[rows])
    return theta
