"""Node models whose size grows with the tier, and the early-exit network (torch).

Tier ladder for 8x8 grey images (10 classes), smallest first:

========  =========================================================  ==========
tier      architecture                                               parameters
========  =========================================================  ==========
device    conv3x3 1->2, ReLU, maxpool2 -> linear 32 -> 10                 350
edge      flatten 64 -> linear 64 -> ReLU -> linear 10                 4,810
regional  conv3x3 1->16, ReLU, maxpool2 -> linear 256 -> 10            2,730
cloud     conv3x3 1->32, ReLU, maxpool2, conv3x3 32->64, ReLU,        35,914
          maxpool2 -> linear 256 -> 64 -> ReLU -> linear 10
========  =========================================================  ==========

The early-exit network (:class:`EarlyExitNet`) is one backbone of ``n_exits`` blocks, each followed
by a classifier ("exit"); exit ``e`` is hosted by the nodes of the e-th tier of the tree, which hold
blocks ``0..e`` (Kaplan et al., arXiv 2405.04249).
"""

from __future__ import annotations

from ..errors import ConfigError, require

torch = require("torch", "torch")
nn = torch.nn

__all__ = ["TIER_ARCHITECTURES", "make_tier_model", "EarlyExitNet", "n_params"]

#: architecture text of each tier level (0 = device ... 3 = cloud), stored in trace metadata
TIER_ARCHITECTURES = (
    "conv3x3 1->2, ReLU, maxpool2 -> linear 32->10",
    "flatten 64 -> linear 64->64 -> ReLU -> linear 64->10",
    "conv3x3 1->16, ReLU, maxpool2 -> linear 256->10",
    "conv3x3 1->32, ReLU, maxpool2 -> conv3x3 32->64, ReLU, maxpool2 -> linear 256->64, ReLU -> linear 64->10",
)


def make_tier_model(level: int, generator=None, n_classes: int = 10):
    """A fresh model for tier ``level`` (0 device, 1 edge, 2 regional, 3 cloud), seeded by ``generator``.

    Parameters
    ----------
    level
        Tier level in ``[0, 3]``.
    generator
        ``torch.Generator`` used for the initial weights (same generator state -> same weights).
    n_classes
        Output classes.

    Returns
    -------
    torch.nn.Sequential
    """
    if level == 0:
        layers = [nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(32, n_classes)]
    elif level == 1:
        layers = [nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, n_classes)]
    elif level == 2:
        layers = [nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(256, n_classes)]
    elif level == 3:
        layers = [nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, n_classes)]
    else:
        raise ConfigError(f"level: {level!r} is not allowed; tier levels are 0 (device) to 3 (cloud)")
    model = nn.Sequential(*layers)
    init_(model, generator)
    return model


def init_(model, generator) -> None:
    """Re-initialise every Linear / Conv2d of ``model`` from ``generator`` (PyTorch's default scheme).

    ``nn.Module`` constructors draw from the global torch RNG; library code never seeds it, so the
    weights are redrawn here with kaiming-uniform(a=sqrt(5)) weights and uniform(+-1/sqrt(fan_in))
    biases, the same distributions as the constructors use.
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                bound = 1.0 / fan_in ** 0.5  # kaiming_uniform(a=sqrt(5)) gives gain*sqrt(3/fan_in) = 1/sqrt(fan_in)
                m.weight.uniform_(-bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.uniform_(-bound, bound, generator=generator)


def n_params(model) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


class EarlyExitNet(nn.Module):
    """A backbone of ``n_exits`` blocks with a classifier after each (exits grow deeper and wider).

    For 8x8 inputs: block 0 = conv3x3 1->2, ReLU, maxpool2 (4x4x2); block 1 = conv3x3 2->16, ReLU
    (4x4x16); block 2 = conv3x3 16->32, ReLU, maxpool2 (2x2x32); block 3 = conv3x3 32->64, ReLU
    (2x2x64). Exits 0-2 flatten their block's output into a linear classifier (exit 0 is then the
    device tier model's architecture); exit 3 is flatten -> linear 256->64 -> ReLU -> linear 64->10.

    Parameters
    ----------
    n_exits
        Number of exits (1 to 4), one per tier of the tree.
    generator
        ``torch.Generator`` for the initial weights.
    n_classes
        Output classes.

    Notes
    -----
    ``forward(x)`` returns the list of every exit's logits; :meth:`exit_model` gives a module that
    returns one exit's logits (what a node hosting that exit serves, recorded into a trace).
    """

    _CHANNELS = (2, 16, 32, 64)

    def __init__(self, n_exits: int, generator=None, n_classes: int = 10):
        super().__init__()
        if isinstance(n_exits, bool) or not isinstance(n_exits, int) or not 1 <= n_exits <= 4:
            raise ConfigError(f"n_exits: {n_exits!r} is not allowed; it must be an integer in [1, 4]")
        self.n_exits = n_exits
        blocks, heads = [], []
        c_in, side = 1, 8
        for e in range(n_exits):
            c = self._CHANNELS[e]
            layers = [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU()]
            if e in (0, 2):
                layers.append(nn.MaxPool2d(2))
                side //= 2
            blocks.append(nn.Sequential(*layers))
            width = c * side * side
            if e == 3:
                heads.append(nn.Sequential(nn.Flatten(), nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, n_classes)))
            else:
                heads.append(nn.Sequential(nn.Flatten(), nn.Linear(width, n_classes)))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleList(heads)
        init_(self, generator)

    def forward(self, x, upto: int | None = None):
        """Logits of exits ``0..upto`` (default all), as a list."""
        last = self.n_exits - 1 if upto is None else upto
        out = []
        h = x
        for e in range(last + 1):
            h = self.blocks[e](h)
            out.append(self.heads[e](h))
        return out

    def exit_model(self, e: int):
        """A module mapping a batch to exit ``e``'s logits (shares this network's parameters)."""
        net = self

        class _Exit(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(x, upto=e)[e]

        return _Exit()

    @staticmethod
    def exit_of_parameter(name: str) -> int:
        """Exit index owning parameter ``name`` (``blocks.e.*`` or ``heads.e.*``)."""
        parts = name.split(".")
        return int(parts[1])
