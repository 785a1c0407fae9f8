"""FedAvg aggregation against hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from idnbandit.errors import ConfigError
from idnbandit.fl import fedavg, partial_fedavg


def test_fedavg_hand_computed():
    # clients hold 10, 30 and 60 samples: p = (0.1, 0.3, 0.6)
    a = {"w": np.array([[1.0, 0.0], [2.0, 4.0]], np.float32), "b": np.array([1.0], np.float32)}
    b = {"w": np.array([[3.0, 10.0], [0.0, 4.0]], np.float32), "b": np.array([-1.0], np.float32)}
    c = {"w": np.array([[0.0, 5.0], [1.0, 4.0]], np.float32), "b": np.array([2.0], np.float32)}
    out = fedavg([a, b, c], [10, 30, 60])
    # w[0,0] = 0.1*1 + 0.3*3 + 0.6*0 = 1.0 ; w[0,1] = 0 + 3 + 3 = 6.0
    # w[1,0] = 0.2 + 0 + 0.6 = 0.8 ; w[1,1] = 4 ; b = 0.1 - 0.3 + 1.2 = 1.0
    np.testing.assert_allclose(out["w"], [[1.0, 6.0], [0.8, 4.0]], rtol=1e-6)
    np.testing.assert_allclose(out["b"], [1.0], rtol=1e-6)
    assert out["w"].dtype == np.float32


def test_fedavg_equal_weights_is_mean_and_inputs_untouched():
    rng = np.random.default_rng(0)
    states = [{"k": rng.normal(size=(3, 4))} for _ in range(4)]
    copies = [{"k": s["k"].copy()} for s in states]
    out = fedavg(states, [5, 5, 5, 5])
    np.testing.assert_allclose(out["k"], np.mean([s["k"] for s in states], axis=0))
    for s, c in zip(states, copies):
        np.testing.assert_array_equal(s["k"], c["k"])


def test_partial_fedavg_averages_only_holders():
    g = {"blocks.0.w": np.array([0.0]), "blocks.1.w": np.array([100.0]), "heads.2.w": np.array([7.0])}
    dev = {"blocks.0.w": np.array([2.0])}  # a device holds block 0 only
    cloud = {"blocks.0.w": np.array([4.0]), "blocks.1.w": np.array([10.0])}
    out = partial_fedavg(g, [dev, cloud], [1.0, 3.0])
    assert out["blocks.0.w"][0] == pytest.approx(0.25 * 2 + 0.75 * 4)  # 3.5
    assert out["blocks.1.w"][0] == pytest.approx(10.0)  # only the cloud holds it
    assert out["heads.2.w"][0] == 7.0  # held by no client: unchanged


@pytest.mark.parametrize("weights", [[1.0, -1.0], [0.0, 0.0], [1.0], [np.nan, 1.0]])
def test_fedavg_rejects_bad_weights(weights):
    s = {"w": np.zeros(2)}
    with pytest.raises(ConfigError, match="weights"):
        fedavg([s, s], weights)


def test_fedavg_rejects_mismatched_clients():
    with pytest.raises(ConfigError, match="keys"):
        fedavg([{"w": np.zeros(2)}, {"v": np.zeros(2)}], [1, 1])
    with pytest.raises(ConfigError, match="shape"):
        fedavg([{"w": np.zeros(2)}, {"w": np.zeros(3)}], [1, 1])
    with pytest.raises(ConfigError, match="at least one"):
        fedavg([], [])
