"""numba kernels of the tabular agents (:mod:`idnbandit.agents.qlearning`): state index, ε-greedy
selection, Q-learning and SARSA(λ) updates over two flat state buffers.

Each kernel is tested against a dense numpy reference (tests/agents/test_rl_reference.py).
"""

from __future__ import annotations

import math

from numba import njit

__all__ = ["DEFAULT_CONFIDENCE_EDGES", "TRACE_CUTOFF", "FH", "IH", "tabular_prob", "q_select", "q_update", "q_learn_step",
           "sarsa_select", "sarsa_update", "sarsa_learn_step", "sarsa_flush_", "tabular_state"]

#: default confidence bin edges (10 bins): dense near 1, where thresholds of real traces sit
DEFAULT_CONFIDENCE_EDGES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)
TRACE_CUTOFF = 1e-4  # SARSA(λ): traces below this are dropped (Sutton & Barto 2018, §12.7)

# The state is two flat buffers (the fused loop reference-counts every array it unpacks, twice per
# request, so fewer arrays is faster):
#   fb: [epsilon, alpha, gamma, visit_power, decay (NaN = none), lambda, pending r, -]
#       ++ conf_edges ++ load_edges ++ Q (n_states*K) ++ trace values (cap, SARSA only)
#   ib: [conf_index, hop_index (-1 none), hop_bins, load_index (-1 none), n_load_bins, t (updates so far),
#        n_conf_edges, n_load_edges, n_states, K, pending flag, pending s, pending a, n traces, -, -]
#       ++ visits (n_states*K) ++ trace indices s*K+a (cap, SARSA only)
FH = 8
IH = 16


@njit(cache=True, inline="always")
def q_off(ib):
    return FH + ib[6] + ib[7]


@njit(cache=True, inline="always")
def bin_of(fb, lo, n, v):
    """Number of the ``n`` sorted edges ``fb[lo:lo+n]`` that are ``<= v``."""
    c = 0
    for j in range(lo, lo + n):
        if v >= fb[j]:
            c += 1
    return c


@njit(cache=True, inline="always")
def state_index(fb, ib, x):
    """Tabular state of ``x``: ``(conf_bin · hop_bins + hop_bin) · n_load_bins + load_bin``."""
    c = bin_of(fb, FH, ib[6], x[ib[0]])
    h = 0
    hb = ib[2]
    if ib[1] >= 0:
        h = int(math.floor(x[ib[1]] * (hb - 1) + 0.5))
        h = 0 if h < 0 else (hb - 1 if h >= hb else h)
    ld = 0
    if ib[3] >= 0:
        ld = bin_of(fb, FH + ib[6], ib[7], x[ib[3]])
    return (c * hb + h) * ib[4] + ld


@njit(cache=True, inline="always")
def argmax_row(fb, ib, s):
    """argmax_a Q[s, a], lowest index on ties."""
    o = q_off(ib) + s * ib[9]
    best = 0
    for k in range(1, ib[9]):
        if fb[o + k] > fb[o + best]:
            best = k
    return best


@njit(cache=True, inline="always")
def epsilon_greedy(fb, ib, s, u):
    """With probability ε_t (``u[0] < ε_t``) the option ``floor(u[1]·K)``, else the greedy one."""
    eps = fb[0]
    if fb[4] == fb[4]:
        eps = eps / (1.0 + fb[4] * ib[5])
    n = ib[9]
    if u[0] < eps:
        a = int(u[1] * n)
        return a if a < n else n - 1
    return argmax_row(fb, ib, s)


@njit(cache=True, inline="always")
def step_size(fb, visits):
    """α, or ``max(α, visits^-p)`` with ``p = visit_power > 0`` (sample means floored at α)."""
    if fb[3] > 0.0 and visits > 0:
        v = 1.0 / visits if fb[3] == 1.0 else visits ** (-fb[3])
        return v if v > fb[1] else fb[1]
    return fb[1]


@njit(cache=True, inline="always")
def one_step_(fb, ib, s, k, target):
    """``Q(s,k) += α(s,k) (target − Q(s,k))``, counting the visit."""
    i = s * ib[9] + k
    ib[IH + i] += 1
    j = q_off(ib) + i
    fb[j] += step_size(fb, ib[IH + i]) * (target - fb[j])


@njit(cache=True)
def tabular_prob(state, x, u, a):
    """Probability that :func:`q_select` / :func:`sarsa_select` picks ``a`` (ε_t/K, plus 1 − ε_t for
    the greedy option). Evaluated after select: SARSA's select changes Q only when a non-terminal
    transition is pending (never in a one-step simulation; :meth:`Agent.act_with_prob` asks first)."""
    fb, ib = state
    eps = fb[0]
    if fb[4] == fb[4]:
        eps = eps / (1.0 + fb[4] * ib[5])
    eps = min(eps, 1.0)
    g = argmax_row(fb, ib, state_index(fb, ib, x))
    return eps / ib[9] + (1.0 - eps if a == g else 0.0)


@njit(cache=True)
def q_select(state, x, u):
    """ε-greedy on ``Q[s(x)]``."""
    fb, ib = state
    return epsilon_greedy(fb, ib, state_index(fb, ib, x), u)


@njit(cache=True)
def q_update(state, x, a, r, rewards):
    """Terminal update ``Q(s,k) += α (r_k − Q(s,k))`` of every observed option (one-step episode)."""
    fb, ib = state
    ib[5] += 1
    s = state_index(fb, ib, x)
    for k in range(ib[9]):
        rk = rewards[k]
        if rk != rk and k == a:
            rk = r
        if rk == rk:
            one_step_(fb, ib, s, k, rk)


@njit(cache=True)
def q_learn_step(state, x, a, r, x_next):
    """Non-terminal Q-learning step ``Q(s,a) += α (r + γ max_b Q(s',b) − Q(s,a))`` (Watkins 1992)."""
    fb, ib = state
    ib[5] += 1
    if r != r:
        return
    s2 = state_index(fb, ib, x_next)
    target = r + fb[2] * fb[q_off(ib) + s2 * ib[9] + argmax_row(fb, ib, s2)]
    one_step_(fb, ib, state_index(fb, ib, x), a, target)


# ---------------------------------------------------------------- SARSA(λ)


@njit(cache=True)
def traces_apply_(fb, ib, s, a, delta, terminal):
    """Replacing traces: E(s,·) ← 0, E(s,a) ← 1; Q += α δ E; E ← γλE (dropped below the cutoff)."""
    n_act = ib[9]
    nsa = ib[8] * n_act
    qo = q_off(ib)
    eo = qo + nsa  # trace values in fb
    io = IH + nsa  # trace indices in ib
    n = 0
    for j in range(ib[13]):  # drop the traces of state s (replaced below)
        if ib[io + j] // n_act != s:
            ib[io + n] = ib[io + j]
            fb[eo + n] = fb[eo + j]
            n += 1
    ib[io + n] = s * n_act + a
    fb[eo + n] = 1.0
    n += 1
    ib[IH + s * n_act + a] += 1
    decay = fb[2] * fb[5]
    m = 0
    for j in range(n):
        i = ib[io + j]
        fb[qo + i] += step_size(fb, ib[IH + i]) * delta * fb[eo + j]
        e = fb[eo + j] * decay
        if e >= TRACE_CUTOFF:
            ib[io + m] = i
            fb[eo + m] = e
            m += 1
    ib[13] = 0 if terminal else m


@njit(cache=True)
def sarsa_flush_(fb, ib, s2, a2):
    """Apply a pending non-terminal transition (s, a, r) with the next pair (s2, a2)."""
    if ib[10] == 1:
        s, a = ib[11], ib[12]
        qo = q_off(ib)
        delta = fb[6] + fb[2] * fb[qo + s2 * ib[9] + a2] - fb[qo + s * ib[9] + a]
        traces_apply_(fb, ib, s, a, delta, False)
        ib[10] = 0


@njit(cache=True)
def sarsa_select(state, x, u):
    """ε-greedy on ``Q[s(x)]``; a pending transition learns from the pair just chosen."""
    fb, ib = state
    s = state_index(fb, ib, x)
    a = epsilon_greedy(fb, ib, s, u)
    sarsa_flush_(fb, ib, s, a)
    return a


@njit(cache=True)
def sarsa_update(state, x, a, r, rewards):
    """Terminal update: δ = r − Q(s,a) through the traces, which are then cleared; other observed options
    get the one-step update ``Q(s,k) += α (r_k − Q(s,k))`` (off-trace, as in :func:`q_update`)."""
    fb, ib = state
    ib[5] += 1
    s = state_index(fb, ib, x)
    sarsa_flush_(fb, ib, s, argmax_row(fb, ib, s))  # only after update(done=False) without an act between
    qo = q_off(ib) + s * ib[9]
    for k in range(ib[9]):
        rk = rewards[k]
        if rk != rk and k == a:
            rk = r
        if rk != rk:
            continue
        if k == a:
            traces_apply_(fb, ib, s, a, rk - fb[qo + a], True)
        else:
            one_step_(fb, ib, s, k, rk)
    ib[13] = 0


@njit(cache=True)
def sarsa_learn_step(state, x, a, r, x_next):
    """Non-terminal step: remember (s, a, r); the next ``select`` (or update) completes the δ."""
    fb, ib = state
    ib[5] += 1
    s = state_index(fb, ib, x)
    sarsa_flush_(fb, ib, s, argmax_row(fb, ib, s))
    if r != r:
        return
    ib[10] = 1
    ib[11] = s
    ib[12] = a
    fb[6] = r


@njit(cache=True)
def tabular_state(state, x):
    """State index of ``x`` (for the Python side)."""
    return state_index(state[0], state[1], x)


# ---------------------------------------------------------------- Python classes
