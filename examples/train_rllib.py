"""Train RLlib (Ray) PPO on ``idnbandit/Offload-v0``.

Usage::

    python examples/train_rllib.py --scenario hi-two-tier --iterations 3

Needs ``ray[rllib]`` (``pip install idnbandit[ray]``). Runs a local, single-process setup (no remote
env runners) so that it fits a laptop; raise ``--iterations`` for real training.
"""

from __future__ import annotations

import argparse


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="Train RLlib PPO on idnbandit/Offload-v0.")
    p.add_argument("--scenario", default="hi-two-tier")
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--batch", type=int, default=1000, help="env steps per training iteration")
    p.add_argument("--episode-length", type=int, default=200)
    a = p.parse_args(argv)

    from idnbandit.errors import require

    require("ray.rllib.algorithms.ppo", "ray")  # also fails cleanly when an RLlib dependency is missing
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    from idnbandit.envs.offload import OffloadEnv

    register_env("idnbandit-offload", lambda cfg: OffloadEnv(**cfg))
    ray.init(num_cpus=1, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    config = (
        PPOConfig()
        .environment("idnbandit-offload", env_config={"scenario": a.scenario, "episode_length": a.episode_length})
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=a.batch, minibatch_size=min(128, a.batch), num_epochs=4, lr=3e-4)
    )
    algo = config.build_algo()
    try:
        for i in range(a.iterations):
            result = algo.train()
            ret = result.get("env_runners", {}).get("episode_return_mean", float("nan"))
            print(f"iteration {i + 1}: mean episode return {ret:.2f} "
                  f"(= {ret / a.episode_length:.4f} per request)")
    finally:
        algo.stop()
        ray.shutdown()


if __name__ == "__main__":
    main()
