"""The agent library: baselines, contextual bandits, HI learners, RL — numba-compiled.

Imports nothing of the simulator: usable by any simulator with numpy and numba alone.

The imports below are the public API, not the list of agents: :mod:`idnbandit.agents.registry` finds
every module of this package that registers an agent (and the ``idnbandit.agents`` entry points, e.g.
the ``ens-*`` strategies), so a new agent module needs no line here (docs/agents.md, "How to add an
agent").
"""

from ._feedback import FEEDBACK_MODES, feedback_mismatch
from ._propensity import propensity_problem
from .base import Agent, AgentKernels
from .baselines import Fixed, Random
from .dqn import DQN
from .epsilon_greedy import EpsilonGreedy
from .exp3 import EXP3, EXP4
from .hedge_hi import HedgeHI, HedgeHIRestart
from .hi_lcb import HILCB, HILCBLite
from .hil import HILF, HILN
from .linear_q import LinearQ
from .lints import LinTS
from .linucb import LinUCB
from .neural_bandits import NeuralTS, NeuralUCB
from .nonstationary import DiscountedLinUCB, SlidingWindowLinUCB
from .oracle import Oracle
from .qlearning import QLearning, SarsaLambda
from .registry import agent_names, make_agent, parse_agent_spec
from .river_policy import RiverPolicy
from .squarecb import SquareCB
from .threshold import StaticThreshold

__all__ = [
    "Agent",
    "AgentKernels",
    "FEEDBACK_MODES",
    "feedback_mismatch",
    "propensity_problem",
    "DQN",
    "EXP3",
    "EXP4",
    "HILCB",
    "HILCBLite",
    "HILF",
    "HILN",
    "HedgeHI",
    "HedgeHIRestart",
    "RiverPolicy",
    "SquareCB",
    "Fixed",
    "Random",
    "DiscountedLinUCB",
    "EpsilonGreedy",
    "LinTS",
    "LinUCB",
    "LinearQ",
    "NeuralTS",
    "NeuralUCB",
    "Oracle",
    "QLearning",
    "SarsaLambda",
    "SlidingWindowLinUCB",
    "StaticThreshold",
    "agent_names",
    "make_agent",
    "parse_agent_spec",
]
