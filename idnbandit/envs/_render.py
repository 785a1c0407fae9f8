"""Pictures of the IDN for the environments' ``render()``: an RGB array (numpy only) and a text picture.

Both show the nodes by tier (cloud on top, devices at the bottom, each node under its parent), the
queue backlog of every node (seconds until a server is free, on a log scale from 1 ms to 10 s), the
pending request's origin and path, and the env's current decision. Everything is computed in
``render()`` from the engine's state; the environments only remember their last action.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import gymnasium as gym
import numpy as np

from ..errors import ConfigError
from ..scenario.model import Tier
from ..sim.compiled import NODE_HI, NODE_LO
from ..sim.metrics import S_COUNT
from ..sim.state import M_G_NEXT, M_PEND_KIND, M_PEND_SLOT, PEND_NONE, RQ_O, T_NOW
from ._font import GLYPH_H, GLYPH_W, text_mask

__all__ = ["RENDER_MODES", "RENDER_FPS", "check_render_mode", "IDNState", "Marks", "idn_state", "Picture",
           "backlog_level", "RenderMixin"]

RENDER_MODES = ["ansi", "rgb_array"]
RENDER_FPS = 4  # one picture per decision; a slow rate so that a video can be followed
LEVEL_LO_S, LEVEL_HI_S = 1e-3, 10.0  # backlog bars: log scale from 1 ms (empty) to 10 s (full)

BG = (18, 20, 28)
INK = (225, 225, 230)
DIM = (120, 124, 140)
EDGE = (80, 86, 104)
BUSY = (235, 80, 60)
PATH = (240, 200, 60)
ORIGIN = (250, 250, 250)
CHOSEN = (80, 235, 120)
TIER_COLOURS = {Tier.DEVICE: (62, 110, 160), Tier.EDGE: (52, 140, 100), Tier.REGIONAL: (160, 112, 52),
                Tier.CLOUD: (120, 84, 164)}


def check_render_mode(render_mode) -> str | None:
    """``render_mode`` if it is None, ``"ansi"`` or ``"rgb_array"``, else :class:`ConfigError`."""
    if render_mode is None or render_mode in RENDER_MODES:
        return render_mode
    raise ConfigError(f"render_mode: {render_mode!r} is not allowed; use None, 'ansi' or 'rgb_array' "
                      "(gymnasium.make(..., render_mode='human') shows the 'rgb_array' pictures in a window "
                      "through Gymnasium's HumanRendering wrapper, which needs pygame)")


def backlog_level(backlog_s) -> np.ndarray:
    """Bar heights in [0, 1]: 0 below 1 ms, then log10 up to 1 at 10 s.

    Examples
    --------
    >>> backlog_level([0.0, 0.001, 0.1, 10.0, 99.0]).tolist()
    [0.0, 0.0, 0.5, 1.0, 1.0]
    """
    b = np.maximum(np.asarray(backlog_s, np.float64), LEVEL_LO_S)
    return np.clip(np.log10(b / LEVEL_LO_S) / math.log10(LEVEL_HI_S / LEVEL_LO_S), 0.0, 1.0)


class IDNState(NamedTuple):
    """What a picture shows of the simulated network, read from the engine's state arrays."""

    time_s: float  # simulated time
    backlog_s: np.ndarray  # (Nn,) seconds until each node has a free server
    link_backlog_s: np.ndarray  # (Nn,) seconds until each node's uplink is free (0 for roots)
    sent: int  # requests sent since the reset
    in_flight: int  # sent and not yet finalised
    pending_origin: int  # origin index (scenario.workload.origins) of the pending request, -1 if none


def idn_state(engine) -> IDNState:
    """The :class:`IDNState` of an :class:`~idnbandit.sim.engine.Engine` (reads its arrays, changes nothing)."""
    rs = engine.driver.rs
    a, c = rs.a, engine.compiled
    now = float(a["misc"][T_NOW])
    free = a["server_free"]
    lo, hi = c.node_i[:, NODE_LO], c.node_i[:, NODE_HI]
    first = np.array([free[i:j].min() if j > i else now for i, j in zip(lo, hi, strict=True)])
    sent = int(a["imisc"][M_G_NEXT])
    pending = -1
    if int(a["imisc"][M_PEND_KIND]) != PEND_NONE:
        pending = int(a["rq_i"][int(a["imisc"][M_PEND_SLOT]), RQ_O])
    return IDNState(now, np.maximum(first - now, 0.0), np.maximum(a["link_free"][:, 0] - now, 0.0), sent,
                    sent - int(a["sums"][S_COUNT]), pending)


class Marks(NamedTuple):
    """What an environment wants shown besides the network: text lines and highlighted nodes."""

    title: str
    lines: tuple[str, ...] = ()
    current: int = -1  # node index where the pending decision is taken (default: the pending origin)
    chosen: tuple[int, ...] = ()  # node indices of the current / last decision


class Picture:
    """The drawing of one scenario: node positions are computed once, pictures on demand.

    Parameters
    ----------
    scenario
        The scenario whose network is drawn.
    """

    def __init__(self, scenario):
        self.scenario = scenario
        nodes = scenario.nodes
        index = {n.name: i for i, n in enumerate(nodes)}
        self.parent = np.array([-1 if n.parent is None else index[n.parent] for n in nodes])
        order: list[int] = []  # depth-first from the roots: children sit under their parent

        def visit(i: int) -> None:
            order.append(i)
            for j in range(len(nodes)):
                if self.parent[j] == i:
                    visit(j)

        for i in range(len(nodes)):
            if self.parent[i] < 0:
                visit(i)
        self.tiers = sorted({n.tier for n in nodes}, key=lambda t: -t.level)  # cloud first
        self.rows = [[i for i in order if nodes[i].tier == t] for t in self.tiers]
        self.paths = [tuple(index[n.name] for n in scenario.path_to_root(o)) for o in scenario.workload.origins]
        widest = max(len(r) for r in self.rows)
        self.width = int(np.clip(56 * widest + 120, 480, 1280))
        self.top = 12 + 4 * (GLYPH_H * 2 + 5)  # four status lines at scale 2
        self.row_h = 74
        self.height = self.top + self.row_h * len(self.rows) + 6
        self.box = np.zeros((len(nodes), 4), np.int64)  # x0, y0, x1, y1 of each node's box
        left, right = 108, self.width - 12
        for r, row in enumerate(self.rows):
            slot = (right - left) / len(row)
            bw = max(2, int(min(44, slot * 0.7)))
            y0 = self.top + r * self.row_h + 8
            for k, i in enumerate(row):
                cx = left + slot * (k + 0.5)
                self.box[i] = (int(cx - bw / 2), y0, int(cx - bw / 2) + bw, y0 + 36)
        self.slot = [(right - left) / len(row) for row in self.rows]

    # ------------------------------------------------------------------ rgb_array
    def rgb(self, state: IDNState, marks: Marks) -> np.ndarray:
        """The picture as a (height, width, 3) uint8 array."""
        img = np.empty((self.height, self.width, 3), np.uint8)
        img[:] = BG
        path = self.paths[state.pending_origin] if state.pending_origin >= 0 else ()
        on_path = set(zip(path[:-1], path[1:], strict=True))
        link = backlog_level(state.link_backlog_s)
        for i, p in enumerate(self.parent):  # links first, boxes on top
            if p < 0:
                continue
            x0, y0 = (self.box[i, 0] + self.box[i, 2]) // 2, self.box[i, 1]
            x1, y1 = (self.box[p, 0] + self.box[p, 2]) // 2, self.box[p, 3]
            colour = PATH if (i, p) in on_path else _mix(EDGE, BUSY, float(link[i]))
            _line(img, x0, y0, x1, y1, colour, 3 if (i, p) in on_path else 1)
        level = backlog_level(state.backlog_s)
        for r, row in enumerate(self.rows):
            t = self.tiers[r]
            _text(img, 8, self.top + r * self.row_h + 20, str(t).upper(), DIM, 2)
            for i in row:
                x0, y0, x1, y1 = self.box[i]
                img[y0:y1, x0:x1] = TIER_COLOURS[t]
                h = int(round(level[i] * (y1 - y0 - 2)))
                if h:
                    img[y1 - 1 - h:y1 - 1, x0 + 1:max(x1 - 1, x0 + 1)] = BUSY
                self._label(img, i, r)
        current = marks.current if marks.current >= 0 else (path[0] if path else -1)
        if current >= 0:
            _frame(img, *self.box[current], ORIGIN, 2)
        for i in marks.chosen:
            _frame(img, *(self.box[i] + (-3, -3, 3, 3)), CHOSEN, 2)
        for k, line in enumerate(_status(state, marks)[:4]):
            _text(img, 8, 8 + k * (GLYPH_H * 2 + 5), line[:(self.width - 16) // ((GLYPH_W + 1) * 2)], INK, 2)
        return img

    def _label(self, img: np.ndarray, i: int, r: int) -> None:
        name = self.scenario.nodes[i].name
        x0, _, x1, y1 = self.box[i]
        cx = (x0 + x1) // 2
        room = self.slot[r] - 6  # a gap between neighbouring labels
        for scale in (2, 1):  # the whole name, large if it fits
            n = int(room // ((GLYPH_W + 1) * scale))
            if n >= len(name):
                break
        if n < min(len(name), 3):
            return
        text = name if n >= len(name) else name[len(name) - n:]  # the tail tells "phone-10" from "phone-1"
        _text(img, int(cx - len(text) * (GLYPH_W + 1) * scale / 2), y1 + 6, text, INK, scale)

    # ------------------------------------------------------------------ ansi
    def ansi(self, state: IDNState, marks: Marks) -> str:
        """The picture as text: one line per node, cloud first, with a backlog bar (log scale)."""
        path = self.paths[state.pending_origin] if state.pending_origin >= 0 else ()
        current = marks.current if marks.current >= 0 else (path[0] if path else -1)
        nodes = self.scenario.nodes
        width = max(len(n.name) for n in nodes)
        lines = [*_status(state, marks),
                 f"{'tier':<8}  {'node':<{width}}  backlog (1 ms .. 10 s)   uplink"]
        level = backlog_level(state.backlog_s)
        for r, row in enumerate(self.rows):
            for i in row:
                bar = "#" * int(round(level[i] * 10))
                up = "-" if self.parent[i] < 0 else _ms(state.link_backlog_s[i])
                notes = []
                if i == current:
                    notes.append("<- pending request" if i == (path[0] if path else -1) else "<- deciding here")
                elif i in path:
                    notes.append("| path")
                if i in marks.chosen:
                    notes.append("* chosen")
                lines.append(f"{str(self.tiers[r]):<8}  {nodes[i].name:<{width}}  [{bar:<10}] "
                             f"{_ms(state.backlog_s[i]):>10}  {up:>10}  {' '.join(notes)}".rstrip())
        return "\n".join(lines) + "\n"


def _status(state: IDNState, marks: Marks) -> list[str]:
    return [marks.title, f"t {state.time_s:.3f} s  sent {state.sent}  in flight {state.in_flight}", *marks.lines]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def _mix(a, b, w: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * w)) for x, y in zip(a, b, strict=True))


def _line(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour, width: int = 1) -> None:
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    xs = np.rint(np.linspace(x0, x1, n)).astype(np.int64)
    ys = np.rint(np.linspace(y0, y1, n)).astype(np.int64)
    h, w = img.shape[:2]
    for d in range(-(width // 2), width - width // 2):
        ok = (xs + d >= 0) & (xs + d < w) & (ys >= 0) & (ys < h)
        img[ys[ok], xs[ok] + d] = colour


def _frame(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour, t: int) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    img[y0:y0 + t, x0:x1] = colour
    img[max(y1 - t, y0):y1, x0:x1] = colour
    img[y0:y1, x0:x0 + t] = colour
    img[y0:y1, max(x1 - t, x0):x1] = colour


def _text(img: np.ndarray, x: int, y: int, text: str, colour, scale: int = 1) -> None:
    if not text:
        return
    m = text_mask(text, scale)
    h, w = img.shape[:2]
    x, y = max(int(x), 0), max(int(y), 0)
    m = m[:max(h - y, 0), :max(w - x, 0)]
    img[y:y + m.shape[0], x:x + m.shape[1]][m] = colour


class RenderMixin:
    """``render()`` for the single environments: they set ``render_mode``, ``engine`` and implement
    ``_render_marks() -> Marks``."""

    render_mode: str | None

    def render(self):
        """The current picture: a (H, W, 3) uint8 array (``"rgb_array"``), a string (``"ansi"``), or
        None with a warning when the env was made without a render mode."""
        if self.render_mode is None:
            gym.logger.warn("You are calling render method without specifying any render mode. "
                            "You can specify the render_mode at initialization, "
                            f'e.g. gym.make("{getattr(self.spec, "id", "idnbandit/Offload-v0")}", '
                            'render_mode="rgb_array")')
            return None
        return render_picture(self._picture_of(), self.engine, self._render_marks(), self.render_mode)

    def _picture_of(self) -> Picture:
        pic = self.__dict__.get("_picture")
        if pic is None:
            pic = self._picture = Picture(self.scenario)
        return pic


def render_picture(picture: Picture, engine, marks: Marks, mode: str):
    """``picture`` of ``engine``'s state with ``marks``, as ``mode`` asks ("rgb_array" or "ansi")."""
    state = idn_state(engine)
    return picture.rgb(state, marks) if mode == "rgb_array" else picture.ansi(state, marks)
