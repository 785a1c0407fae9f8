"""simulate(..., log=path): decision logs from the simulator, checked end to end."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.errors import ConfigError, LogError
from idnbandit.ope import deterministic_policy, evaluate, read_log, sim_value
from idnbandit.scenario import load_scenario
from idnbandit.sim import simulate

pytest.importorskip("pyarrow")


class UniformAgent:
    """A Python agent choosing uniformly at random; reports its propensity 1/K."""

    propensity_kind = "stochastic"
    name = "uniform-test"

    def __init__(self, k, seed=0):
        self.k, self.rng = k, np.random.default_rng(seed)

    def act(self, x):
        return int(self.rng.integers(self.k))

    def act_with_prob(self, x):
        return self.act(x), 1.0 / self.k

    def update(self, x, a, r, *, rewards=None):
        return self


class FirstOption(UniformAgent):
    propensity_kind = "deterministic"
    name = "first-option"

    def act(self, x):
        return 0


def _k(scenario):
    from idnbandit.sim.compiled import resolve_inputs

    _, _, c = resolve_inputs(load_scenario(scenario), None)
    return c.n_options


def test_a_uniform_log_estimates_every_fixed_option(tmp_path):
    """The log of a uniform agent on idn-4tier: IPS/DR estimates of each 'always option k' policy are
    close to the value the simulator measured for that option on the same run (its estimates)."""
    k = _k("idn-4tier")
    path = tmp_path / "u.parquet"
    res = simulate("idn-4tier", UniformAgent(k), 20_000, seed=3, log=path)
    log = read_log(path)
    assert log.n_rows == 20_000 and sorted(log.request.tolist()) == list(range(20_000))
    assert log.meta.simulated and log.meta.feedback == "bandit" and log.meta.scenario == "idn-4tier"
    np.testing.assert_allclose(log.propensity, 1 / k)
    assert log.reward.mean() == pytest.approx(res.mean_reward, rel=1e-9)
    for opt in range(k):
        target = deterministic_policy(lambda x, opt=opt: np.full(x.shape[0], opt), k)
        truth = sim_value(log, target)
        assert truth == pytest.approx(res.fixed_option_mean_reward[opt], rel=1e-9)
        for e in evaluate(log, target, estimators=["ips", "dr"], n_boot=100):
            assert abs(e.value - truth) < 4 * e.std_error + 1e-3, (opt, e)


def test_logging_changes_nothing_and_rows_match_the_run(tmp_path):
    res0 = simulate("hi-two-tier", FirstOption(2), 5_000, seed=1)
    res1 = simulate("hi-two-tier", FirstOption(2), 5_000, seed=1, log=tmp_path / "f.csv")
    assert res0.mean_reward == res1.mean_reward and (res0.option_rates == res1.option_rates).all()
    log = read_log(tmp_path / "f.csv")
    assert (log.action == 0).all() and (log.propensity == 1.0).all()
    # label_on_forward: a request served locally reveals nothing
    assert log.meta.feedback == "label_on_forward" and not log.observed.any() and np.isnan(log.reward).all()
    with pytest.raises(LogError, match="no observed reward"):
        evaluate(log, deterministic_policy(lambda x: np.zeros(x.shape[0], np.int64), 2))


def test_refusals_come_before_any_work(tmp_path):
    class Quiet(UniformAgent):
        propensity_kind = None

    class Sampler(UniformAgent):
        propensity_kind = "sampled"

    with pytest.raises(ConfigError, match="cannot report the probability.*propensity_kind is None"):
        simulate("idn-4tier", Quiet(4), 100, log=tmp_path / "a.csv")
    with pytest.raises(ConfigError, match="cannot say with what probability"):
        simulate("idn-4tier", Sampler(4), 100, log=tmp_path / "a.csv")
    with pytest.raises(ConfigError, match="record_requests"):
        simulate("idn-4tier", UniformAgent(4), 100, log=tmp_path / "a.csv", record_requests=True)
    with pytest.raises(LogError, match="unknown log format"):
        simulate("idn-4tier", UniformAgent(4), 100, log=tmp_path / "a.json")
    with pytest.raises(LogError, match="does not exist"):
        simulate("idn-4tier", UniformAgent(4), 100, log=tmp_path / "no" / "a.csv")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine.csv").write_text("precious")
    with pytest.raises(LogError, match="exists"):
        simulate("idn-4tier", UniformAgent(4), 100, log=tmp_path / "mine.csv")
    assert (tmp_path / "mine.csv").read_text() == "precious"


def test_a_failed_run_leaves_no_log(tmp_path):
    class Bad(UniformAgent):
        def act_with_prob(self, x):
            return 99, 1.0

    with pytest.raises(ConfigError, match="chose 99"):
        simulate("idn-4tier", Bad(4), 100, log=tmp_path / "b.parquet")
    assert list(tmp_path.iterdir()) == []


def test_thompson_sampling_is_logged_on_the_step_path_with_its_probabilities(tmp_path):
    from idnbandit.agents import make_agent

    k = _k("idn-4tier")
    res = simulate("idn-4tier", make_agent("lints", k, 8, seed=0), 2000, seed=1, log=tmp_path / "ts.parquet")
    assert res.extra["path"] == "python"
    log = read_log(tmp_path / "ts.parquet")
    assert (log.propensity > 0).all() and (log.propensity < 1).any() and (log.propensity <= 1).all()
    plain = simulate("idn-4tier", make_agent("lints", k, 8, seed=0), 2000, seed=1)
    assert plain.mean_reward == res.mean_reward  # logging does not change the decisions
