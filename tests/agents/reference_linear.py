"""Plain numpy reference implementations of the linear agents (slow, obvious; for tests only).

Each mirrors the published algorithm directly (explicit inverses / factorisations recomputed from
the ground-truth matrices) with the same conventions as the kernels: ties to the lowest index,
the same uniforms, the same feedback rule (every observed option is updated; ``r`` stands in for
``rewards[a]`` when that is NaN).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


def observed(k, a, r, rewards):
    rk = rewards[k]
    if np.isnan(rk) and k == a:
        rk = r
    return rk


class RefRidge:
    """Per-option ridge statistics with Sherman–Morrison and periodic exact re-inversion."""

    def __init__(self, K, d, ridge, refactor_every):
        self.A = np.array([ridge * np.eye(d) for _ in range(K)])
        self.Ainv = np.array([np.eye(d) / ridge for _ in range(K)])
        self.b = np.zeros((K, d))
        self.theta = np.zeros((K, d))
        self.since = np.zeros(K, dtype=int)
        self.R = refactor_every

    def learn(self, x, a, r, rewards):
        for k in range(self.b.shape[0]):
            rk = observed(k, a, r, rewards)
            if np.isnan(rk):
                continue
            self.A[k] += np.outer(x, x)
            self.b[k] += rk * x
            u = self.Ainv[k] @ x
            den = 1.0 + x @ u
            self.since[k] += 1
            if den > 1e-12:
                self.Ainv[k] -= np.outer(u, u) / den
            if den <= 1e-12 or self.since[k] >= self.R:
                self.Ainv[k] = np.linalg.inv(self.A[k])
                self.since[k] = 0
            self.theta[k] = self.Ainv[k] @ self.b[k]


class RefLinUCB(RefRidge):
    def __init__(self, K, d, alpha=1.0, ridge=1.0, refactor_every=1000):
        super().__init__(K, d, ridge, refactor_every)
        self.alpha = alpha

    def select(self, x, u):
        q = np.einsum("kij,j->ki", self.Ainv, x) @ x
        p = self.theta @ x + self.alpha * np.sqrt(np.maximum(q, 0.0))
        return int(np.argmax(p))


class RefEpsilonGreedy(RefRidge):
    def __init__(self, K, d, epsilon=0.1, ridge=1.0, decay=None, refactor_every=1000):
        super().__init__(K, d, ridge, refactor_every)
        self.epsilon, self.decay, self.t = epsilon, decay, 0

    def select(self, x, u):
        K = self.b.shape[0]
        eps = self.epsilon if self.decay is None else self.epsilon / (1.0 + self.decay * self.t)
        if u[0] < eps:
            return min(int(u[1] * K), K - 1)
        return int(np.argmax(self.theta @ x))

    def learn(self, x, a, r, rewards):
        self.t += 1
        super().learn(x, a, r, rewards)


def box_muller(u, n):
    z = np.empty(n)
    for j in range(n):
        p = j // 2
        rad = math.sqrt(-2.0 * math.log(1.0 - u[2 * p]))
        ang = 2.0 * math.pi * u[2 * p + 1]
        z[j] = rad * (math.cos(ang) if j % 2 == 0 else math.sin(ang))
    return z


class RefLinTS:
    """θ̃_a = μ_a + v·chol(B_a)⁻ᵀ z_a with the factor recomputed from B_a every decision."""

    def __init__(self, K, d, v=0.1, ridge=1.0):
        self.B = np.array([ridge * np.eye(d) for _ in range(K)])
        self.f = np.zeros((K, d))
        self.v = v

    def select(self, x, u):
        K, d = self.f.shape
        z = box_muller(u, K * d).reshape(K, d)
        scores = []
        for k in range(K):
            L = np.linalg.cholesky(self.B[k])
            mu = np.linalg.solve(self.B[k], self.f[k])
            scores.append((mu + self.v * np.linalg.solve(L.T, z[k])) @ x)
        return int(np.argmax(scores))

    def learn(self, x, a, r, rewards):
        for k in range(self.f.shape[0]):
            rk = observed(k, a, r, rewards)
            if not np.isnan(rk):
                self.B[k] += np.outer(x, x)
                self.f[k] += rk * x

    def mu(self):
        return np.array([np.linalg.solve(B, f) for B, f in zip(self.B, self.f)])


class RefDLinUCB:
    """Russac et al. 2019 Algorithm 1 per option, every update one time step."""

    def __init__(self, K, d, gamma=0.99, alpha=1.0, ridge=1.0, delta=0.01, noise_sigma=1.0,
                 theta_bound=1.0, context_bound=1.0):
        self.V = np.array([ridge * np.eye(d) for _ in range(K)])
        self.Vt = self.V.copy()
        self.b = np.zeros((K, d))
        self.g, self.alpha, self.lam, self.delta = gamma, alpha, ridge, delta
        self.sigma, self.S, self.L = noise_sigma, theta_bound, context_bound
        self.t = 0

    def beta(self):
        d = self.b.shape[1]
        g, lam = self.g, self.lam
        inner = 1 + self.L**2 * (1 - g ** (2 * self.t)) / (lam * d * (1 - g * g))
        return math.sqrt(lam) * self.S + self.sigma * math.sqrt(2 * math.log(1 / self.delta) + d * math.log(inner))

    def select(self, x, u):
        scores = []
        for k in range(self.b.shape[0]):
            Vinv = np.linalg.inv(self.V[k])
            theta = Vinv @ self.b[k]
            w = x @ Vinv @ self.Vt[k] @ Vinv @ x
            scores.append(theta @ x + self.alpha * self.beta() * math.sqrt(max(w, 0.0)))
        return int(np.argmax(scores))

    def learn(self, x, a, r, rewards):
        d = x.shape[0]
        g, lam = self.g, self.lam
        self.t += 1
        for k in range(self.b.shape[0]):
            rk = observed(k, a, r, rewards)
            xx = np.outer(x, x) if not np.isnan(rk) else np.zeros((d, d))
            self.V[k] = g * self.V[k] + xx + (1 - g) * lam * np.eye(d)
            self.Vt[k] = g * g * self.Vt[k] + xx + (1 - g * g) * lam * np.eye(d)
            self.b[k] = g * self.b[k] + (rk * x if not np.isnan(rk) else 0.0)


class RefSWLinUCB:
    """Cheung et al. 2019: statistics recomputed from the last ``window`` steps at every decision."""

    def __init__(self, K, d, window=1000, alpha=1.0, ridge=1.0, rebuild_every=None):
        self.buf = deque(maxlen=window)
        self.K, self.d, self.alpha, self.lam = K, d, alpha, ridge

    def stats(self):
        A = np.array([self.lam * np.eye(self.d) for _ in range(self.K)])
        b = np.zeros((self.K, self.d))
        for x, rs in self.buf:
            for k in range(self.K):
                if not np.isnan(rs[k]):
                    A[k] += np.outer(x, x)
                    b[k] += rs[k] * x
        return A, b

    def select(self, x, u):
        A, b = self.stats()
        scores = []
        for k in range(self.K):
            Ainv = np.linalg.inv(A[k])
            scores.append((Ainv @ b[k]) @ x + self.alpha * math.sqrt(max(x @ Ainv @ x, 0.0)))
        return int(np.argmax(scores))

    def learn(self, x, a, r, rewards):
        rs = np.array([observed(k, a, r, rewards) for k in range(self.K)])
        self.buf.append((x.copy(), rs))


def ref_static_threshold(x, theta=0.5, confidence_index=0, local=0, forward=-1, n_actions=2):
    return local % n_actions if x[confidence_index] >= theta else forward % n_actions


def ref_oracle(rewards):
    r = np.where(np.isnan(rewards), -np.inf, rewards)
    return int(np.argmax(r))
