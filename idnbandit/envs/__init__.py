"""Gymnasium environments over the idnbandit simulator (docs/envs.md).

Importing this package (done by ``import idnbandit``) registers three ids; their modules (and the
simulator) are only imported when an environment is made:

* ``idnbandit/Offload-v0`` -- :class:`~idnbandit.envs.offload.OffloadEnv`, one decision per request;
* ``idnbandit/Cascade-v0`` -- :class:`~idnbandit.envs.cascade.CascadeEnv`, serve here or forward, hop by hop;
* ``idnbandit/Ensemble-v0`` -- :class:`~idnbandit.envs.ensemble.EnsembleEnv`, query models one by one, then stop.

The multi-agent environment (every decision node an agent, PettingZoo AEC API) is
:class:`idnbandit.envs.multiagent.MultiAgentIDNEnv`; it needs ``pip install 'idnbandit[multiagent]'``
and is only imported on demand.

>>> import gymnasium, idnbandit
>>> env = gymnasium.make("idnbandit/Offload-v0", scenario="hi-two-tier", feedback="label_on_forward")
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_IDS", "VECTOR_ENTRY_POINTS", "register_envs"]

ENV_IDS = {
    "idnbandit/Offload-v0": "idnbandit.envs.offload:OffloadEnv",
    "idnbandit/Cascade-v0": "idnbandit.envs.cascade:CascadeEnv",
    "idnbandit/Ensemble-v0": "idnbandit.envs.ensemble:EnsembleEnv",
}


#: ids with a native vector env (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``)
VECTOR_ENTRY_POINTS = {"idnbandit/Offload-v0": "idnbandit.envs.vector:OffloadVectorEnv"}


def register_envs() -> None:
    """Register the idnbandit environment ids with Gymnasium (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, vector_entry_point=VECTOR_ENTRY_POINTS.get(env_id))


register_envs()
