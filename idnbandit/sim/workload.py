"""Request streams and background jobs, drawn from the run seed alone (common random numbers).

``SeedSequence(seed).spawn(5)`` gives independent streams for arrival times, origins, sample ids,
background jobs (spawned again per node) and the bursty process's hidden state. Requests are made in
fixed-size chunks of ``CHUNK`` whatever the run length or the agent, so two runs with one seed see
exactly the same requests and memory stays flat however many requests are simulated.

Arrival processes (``rate_per_s`` is the mean rate *per origin*; the stream is the superposition
over all O origins, each request's origin drawn uniformly):

* ``poisson`` — exponential gaps at rate ``O * rate_per_s``;
* ``bursty`` — a two-state Markov-modulated Poisson process shared by all origins (a flash crowd
  hits every origin at once): high rate ``burst_factor * rate`` for an exponential time of mean
  ``mean_burst_s``, low rate for mean ``mean_calm_s``, the low rate chosen so the mean stays
  ``rate``; the state starts from its stationary distribution;
* ``diurnal`` — rate ``rate * (1 + a sin(2 pi t / period))``;
* ``replay`` — the timestamps of a file (seconds, one per line, non-decreasing; the grammar of
  :mod:`idnbandit.scenario.replay`), for all origins
  together; a stream longer than the file repeats it, shifted by its span plus one mean gap.

Bursty and diurnal arrivals are made by thinning a Poisson stream at the maximal rate (exact for a
rate function independent of the candidate stream).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..scenario.model import ArrivalProcess, Scenario, ServiceDistribution
from ..scenario.replay import read_replay_file, replay_request_rate
from ..scenario.validate import check_background_load

__all__ = ["CHUNK", "BLOCK", "RequestStream", "RequestBlocks", "BackgroundSource", "read_replay_file"]

CHUNK = 1 << 16
BLOCK = 1024  # requests per block of the step engine (RequestBlocks)
_BG_BLOCK = 4096


class RequestStream:
    """The request stream of one run: chunks of (arrival time s, origin index, sample index).

    Parameters
    ----------
    scenario
        Gives the workload (process, rates, origins).
    n_samples
        Samples in the trace; sample ids are uniform in ``[0, n_samples)``.
    seed
        The run seed.
    """

    def __init__(self, scenario: Scenario, n_samples: int, seed: int):
        w = scenario.workload
        ss = np.random.SeedSequence(seed)
        arr, org, smp, _bg, mod = ss.spawn(5)
        self._g_arr = np.random.default_rng(arr)
        self._g_org = np.random.default_rng(org)
        self._g_smp = np.random.default_rng(smp)
        self._g_mod = np.random.default_rng(mod)
        self.n_origins = len(w.origins)
        self.n_samples = int(n_samples)
        self.process = w.process
        self.rate = w.rate_per_s * self.n_origins
        self._w = w
        self._t = 0.0
        self._pending = np.zeros(0)
        if w.process is ArrivalProcess.REPLAY:
            p = Path(w.replay_file)
            if not p.is_absolute() and scenario.base_dir:
                p = Path(scenario.base_dir) / p
            self._replay = read_replay_file(p, shown=w.replay_file)  # the grammar load_scenario checks
            self._period, replay_rate = replay_request_rate(self._replay, self.rate)
            # as check_scenario_data does (a Scenario built in Python may not have been through it)
            check_background_load(scenario, replay_rate, f"{self._replay.shape[0]:,} timestamps of {w.replay_file!r}")
            self._replay_pos = 0
            self._replay_round = 0
        elif w.process is ArrivalProcess.BURSTY:
            frac = w.mean_burst_s / (w.mean_burst_s + w.mean_calm_s)
            self._rates = (self.rate * (1 - w.burst_factor * frac) / (1 - frac), self.rate * w.burst_factor)
            self._means = (w.mean_calm_s, w.mean_burst_s)
            self._lmax = max(self._rates)
            self._state0 = int(self._g_mod.random() < frac)  # state of the segment starting at _sw[0]
            self._sw = [0.0, float(self._g_mod.exponential(self._means[self._state0]))]
        elif w.process is ArrivalProcess.DIURNAL:
            self._lmax = self.rate * (1 + w.diurnal_amplitude)
        else:
            self._lmax = self.rate

    # ------------------------------------------------------------------ arrival times
    def _rate_at(self, t: np.ndarray) -> np.ndarray:
        w = self._w
        if self.process is ArrivalProcess.DIURNAL:
            return self.rate * (1 + w.diurnal_amplitude * np.sin(2 * np.pi * t / w.diurnal_period_s))
        # bursty: extend the hidden state path past t[-1], then look the states up
        sw = self._sw
        while sw[-1] <= t[-1]:
            state = (self._state0 + len(sw) - 1) % 2
            sw.append(sw[-1] + float(self._g_mod.exponential(self._means[state])))
        idx = np.searchsorted(np.asarray(sw), t, side="right") - 1
        states = (self._state0 + idx) % 2
        rates = np.where(states == 1, self._rates[1], self._rates[0])
        drop = int(idx[-1])  # segments before the last one used are no longer needed
        if drop > 0:
            self._state0 = (self._state0 + drop) % 2
            del sw[:drop]
        return rates

    def _times(self, n: int) -> np.ndarray:
        if self.process is ArrivalProcess.REPLAY:
            out = np.empty(n)
            filled = 0
            ts = self._replay
            while filled < n:
                take = min(n - filled, ts.shape[0] - self._replay_pos)
                out[filled:filled + take] = ts[self._replay_pos:self._replay_pos + take] \
                    + self._replay_round * self._period
                filled += take
                self._replay_pos += take
                if self._replay_pos == ts.shape[0]:
                    self._replay_pos = 0
                    self._replay_round += 1
            return out
        parts = [self._pending]
        have = self._pending.shape[0]
        while have < n:
            cand = self._t + np.cumsum(self._g_arr.exponential(1.0 / self._lmax, CHUNK))
            self._t = float(cand[-1])
            if self.process is not ArrivalProcess.POISSON:
                u = self._g_arr.random(CHUNK)
                cand = cand[u * self._lmax < self._rate_at(cand)]
            parts.append(cand)
            have += cand.shape[0]
        allt = np.concatenate(parts)
        self._pending = allt[n:]
        return allt[:n]

    def next_chunk(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next ``CHUNK`` requests: (times float64, origins int64, samples int64)."""
        t = self._times(CHUNK)
        o = self._g_org.integers(0, self.n_origins, CHUNK, dtype=np.int64)
        s = self._g_smp.integers(0, self.n_samples, CHUNK, dtype=np.int64)
        return t, o, s


class RequestBlocks:
    """:class:`RequestStream`'s requests in blocks of at most ``block`` (default ``BLOCK``), the first ones
    small (short runs draw little); Poisson streams are drawn lazily
    (numpy's exponential and bounded-integer draws and ``cumsum`` are sequential, so drawing a chunk
    in pieces gives the same values), other processes chunk by chunk."""

    def __init__(self, scenario: Scenario, n_samples: int, seed: int, first: int = 64, block: int = BLOCK):
        self.first = first
        self.block = int(block)
        w = scenario.workload
        self.lazy = w.process is ArrivalProcess.POISSON
        self.left = 0  # requests left in the current chunk
        if not self.lazy:
            self.rs = RequestStream(scenario, n_samples, seed)
            return
        # RequestStream's Poisson generators only: child i of SeedSequence(seed).spawn(5) is
        # SeedSequence(seed, spawn_key=(i,)) (children 0, 1, 2: arrivals, origins, samples)
        self.rs = self
        self._g_arr, self._g_org, self._g_smp = (np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
                                                 for i in range(3))
        self.n_origins, self.n_samples = len(w.origins), int(n_samples)
        self._lmax = w.rate_per_s * self.n_origins
        self._t = 0.0

    def next_block(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rs = self.rs
        if self.left == 0:
            self.left, self.i, self.acc, self.base = CHUNK, 0, 0.0, rs._t
            self.chunk = None if self.lazy else rs.next_chunk()
        # lazy blocks grow first, 2 first, ... block: short runs draw little
        b = min(self.block if not self.lazy else min(self.block, max(self.first, 2 * self.i)), self.left)
        self.left -= b
        if not self.lazy:
            self.i += b
            return tuple(a[self.i - b:self.i] for a in self.chunk)
        self.i += b
        c = np.cumsum(np.concatenate(([self.acc], rs._g_arr.exponential(1.0 / rs._lmax, b))))[1:]
        self.acc = float(c[-1])
        t = self.base + c
        if self.left == 0:
            rs._t = float(t[-1])
        return (t, rs._g_org.integers(0, rs.n_origins, b, dtype=np.int64),
                rs._g_smp.integers(0, rs.n_samples, b, dtype=np.int64))


class BackgroundSource:
    """Background jobs of every node, drawn per node in fixed blocks from the run seed.

    Node ``n`` with utilisation ``u``, ``c`` servers and mean service ``m`` gets Poisson arrivals at
    rate ``u * c / m`` and exponential or deterministic service times of mean ``m``.
    """

    def __init__(self, scenario: Scenario, seed: int):
        names = [n.name for n in scenario.nodes]
        seen: set[str] = set()
        for b in scenario.workload.background:
            if b.node in seen:
                raise ConfigError(f"workload.background: node {b.node!r} is listed twice; give one entry per node")
            seen.add(b.node)
        bg_ss = np.random.SeedSequence(seed).spawn(5)[3]
        children = bg_ss.spawn(len(names))
        self.nodes: dict[int, tuple] = {}
        for b in scenario.workload.background:
            if b.utilisation <= 0:
                continue
            n = names.index(b.node)
            servers = scenario.nodes[n].servers
            mean_s = b.mean_service_ms / 1e3
            rate = b.utilisation * servers / mean_s
            det = b.service is ServiceDistribution.DETERMINISTIC
            self.nodes[n] = (np.random.default_rng(children[n]), rate, mean_s, det)
        self._last = dict.fromkeys(self.nodes, 0.0)

    def next_block(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``_BG_BLOCK`` background jobs of node ``n``: (arrival times s, service s at speed 1).

        Successive calls continue the node's stream; the values depend on the run seed only.
        """
        g, rate, mean_s, det = self.nodes[n]
        gaps = g.exponential(1.0 / rate, _BG_BLOCK)
        svc = np.full(_BG_BLOCK, mean_s) if det else g.exponential(mean_s, _BG_BLOCK)
        arr = self._last[n] + np.cumsum(gaps)
        self._last[n] = float(arr[-1])
        return arr, svc

    @property
    def max_rate(self) -> float:
        """Largest background arrival rate of any node (jobs/s; 0 without background)."""
        return max((v[1] for v in self.nodes.values()), default=0.0)

    def top_up(self, st, until: float):
        """Buffer jobs until every node's horizon passes ``until``; drop the jobs already inserted.

        Returns the state (re-allocated when the buffers had to grow).
        """
        for n, (g, rate, mean_s, det) in self.nodes.items():
            p, ln = int(st.bg_i[n, 0]), int(st.bg_i[n, 1])
            if st.bg_horizon[n] >= until:
                continue
            blocks = []
            horizon = float(st.bg_horizon[n])
            added = 0
            while horizon < until:
                gaps = g.exponential(1.0 / rate, _BG_BLOCK)
                svc = np.full(_BG_BLOCK, mean_s) if det else g.exponential(mean_s, _BG_BLOCK)
                arr = self._last[n] + np.cumsum(gaps)
                self._last[n] = float(arr[-1])
                blocks.append((arr, svc))
                horizon = self._last[n]
                added += _BG_BLOCK
            keep = ln - p
            need = keep + added
            if need > st.bg_arr.shape[1]:
                cap = 1 << int(math.ceil(math.log2(need)))
                arr2, svc2 = np.zeros((st.bg_arr.shape[0], cap)), np.zeros((st.bg_arr.shape[0], cap))
                for m in range(st.bg_arr.shape[0]):
                    q, lm = int(st.bg_i[m, 0]), int(st.bg_i[m, 1])
                    arr2[m, :lm - q] = st.bg_arr[m, q:lm]
                    svc2[m, :lm - q] = st.bg_svc[m, q:lm]
                    st.bg_i[m, 1] = lm - q
                    st.bg_i[m, 0] = 0
                st = st._replace(bg_arr=arr2, bg_svc=svc2)
            else:
                st.bg_arr[n, :keep] = st.bg_arr[n, p:ln]
                st.bg_svc[n, :keep] = st.bg_svc[n, p:ln]
                st.bg_i[n, 0] = 0
                st.bg_i[n, 1] = keep
            pos = int(st.bg_i[n, 1])
            for arr, svc in blocks:
                st.bg_arr[n, pos:pos + arr.shape[0]] = arr
                st.bg_svc[n, pos:pos + arr.shape[0]] = svc
                pos += arr.shape[0]
            st.bg_i[n, 1] = pos
            # every job before the last buffered arrival is buffered
            st.bg_horizon[n] = horizon
        return st
