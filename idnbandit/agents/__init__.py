"""The agent library: baselines, contextual bandits, HI learners, RL — numba-compiled.

Imports nothing of the simulator: usable by any simulator with numpy and numba alone.
"""

from .base import Agent, AgentKernels
from .baselines import Fixed, Random
from .registry import agent_names, make_agent, parse_agent_spec

__all__ = [
    "Agent",
    "AgentKernels",
    "Fixed",
    "Random",
    "agent_names",
    "make_agent",
    "parse_agent_spec",
]
