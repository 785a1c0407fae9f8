"""examples/train_rllib.py trains RLlib PPO on Offload-v0 for one iteration (skipped without RLlib)."""

from __future__ import annotations

import pytest


def _rllib_importable() -> bool:
    try:
        from ray.rllib.algorithms.ppo import PPOConfig  # noqa: F401
    except Exception:  # noqa: BLE001  (ImportError, or an RLlib dependency failing at import)
        return False
    return True


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.skipif(not _rllib_importable(), reason="RLlib is not importable (pip install 'ray[rllib]')")
def test_rllib_example_trains_an_iteration(capsys, script_module):
    mod = script_module("examples/train_rllib.py")
    mod.main(["--iterations", "1", "--batch", "200", "--episode-length", "50"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("iteration")]
    assert len(lines) == 1
    per_request = float(lines[-1].split("= ")[1].split()[0])
    assert 0.0 < per_request <= 1.0  # a mean reward per request of the hi-two-tier scenario
