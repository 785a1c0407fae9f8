"""The named kinds of a scenario's fields (string enums): tiers, arrival processes, service
distributions, feedback modes, fault kinds. Each parses its TOML string with a one-line error."""

from __future__ import annotations

import enum

from ..errors import ConfigError

__all__ = ["Tier", "ArrivalProcess", "ServiceDistribution", "FeedbackMode", "FaultKind"]


class _StrEnum(str, enum.Enum):
    @classmethod
    def parse(cls, value, where: str):
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ConfigError(f"{where}: {value!r} is not allowed; use one of {allowed}") from None

    def __str__(self) -> str:
        return self.value


class Tier(_StrEnum):
    """Tier of a node, from the edge of the network to its core."""

    DEVICE = "device"
    EDGE = "edge"
    REGIONAL = "regional"
    CLOUD = "cloud"

    @property
    def level(self) -> int:
        return _TIER_LEVEL[self]


_TIER_LEVEL = {t: i for i, t in enumerate(Tier)}


class ArrivalProcess(_StrEnum):
    POISSON = "poisson"
    BURSTY = "bursty"  # two-state Markov-modulated Poisson process
    DIURNAL = "diurnal"  # sinusoidal rate, non-homogeneous Poisson by thinning
    REPLAY = "replay"  # timestamps (seconds, one per line) from a user file


class ServiceDistribution(_StrEnum):
    EXPONENTIAL = "exponential"
    DETERMINISTIC = "deterministic"


class FeedbackMode(_StrEnum):
    """What the deciding node observes after a decision (docs/agents.md, "Feedback modes")."""

    FULL = "full"  # label known: rewards of all options
    BANDIT = "bandit"  # reward of the chosen option only
    LABEL_ON_FORWARD = "label_on_forward"  # label only when forwarded (HIL-N setting)
    PROXY = "proxy"  # the remote answer stands in for the label


class FaultKind(_StrEnum):
    LINK_BANDWIDTH = "link_bandwidth"  # the uplink of `target` runs at `factor` x bandwidth
    LINK_OUTAGE = "link_outage"  # the uplink of `target` is down: requests crossing it time out
    NODE_SLOWDOWN = "node_slowdown"  # node `target` computes at `factor` x speed
