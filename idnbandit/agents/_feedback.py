"""Which scenario feedback modes an agent can learn from (``Agent.feedback_modes``) and the warning text.

The modes (``idnbandit.scenario.FeedbackMode``): ``full`` (every option's reward), ``bandit`` (the
chosen option's reward), ``label_on_forward`` (a forwarded request reports its reward and the local
model's; a locally served one nothing) and ``proxy`` (as label_on_forward, with the remote answer
standing in for the label). An agent whose decisions only change when it observes something, and
that does not explore, stops learning under a mode that reports nothing for its current choice:
LinUCB under label_on_forward serves locally forever (ties go to option 0). docs/agents_hi.md has
the table of which learner suits which mode.
"""

from __future__ import annotations

__all__ = ["FEEDBACK_MODES", "LEARNS_WITHOUT_LOCAL_LABEL", "LEARNS_FROM_OWN_REWARD", "feedback_mismatch"]

#: every feedback mode of a scenario (``idnbandit.scenario.FeedbackMode``'s values)
FEEDBACK_MODES = frozenset({"full", "bandit", "label_on_forward", "proxy"})
_FEEDBACK_HINTS = {
    "label_on_forward": "a request served locally reports nothing, so an agent that does not explore keeps "
                        "serving locally; use a learner designed for it (hil-n, hedge-hi, hi-lcb, hi-lcb-lite)",
    "proxy": "a request served locally reports nothing (as under label_on_forward); use a learner designed for "
             "label_on_forward (hil-n, hedge-hi, hi-lcb)",
    "bandit": "the local model's label is never observed; use a bandit learner (linucb, lints, exp3, exp4, "
              "squarecb)",
    "full": "",
}


def feedback_mismatch(agent, mode) -> str | None:
    """The warning text if ``agent`` cannot learn from feedback ``mode``, else None.

    Agents declare the modes they learn from in ``feedback_modes`` (a class attribute); objects
    without it (user agents, ensemble strategies) are never warned about.

    Examples
    --------
    >>> from idnbandit.agents import FEEDBACK_MODES, HILN, LinUCB
    >>> sorted(FEEDBACK_MODES)
    ['bandit', 'full', 'label_on_forward', 'proxy']
    >>> print(feedback_mismatch(HILN(2, 1), "label_on_forward"))
    None
    >>> print(feedback_mismatch(LinUCB(2, 1), "label_on_forward"))  # doctest: +ELLIPSIS
    agent 'linucb' cannot learn from 'label_on_forward' feedback (it learns from bandit, full): ...
    """
    modes = getattr(agent, "feedback_modes", None)
    mode = str(getattr(mode, "value", mode))
    if modes is None or mode in modes:
        return None
    name = getattr(agent, "name", None) or type(agent).__name__
    hint = _FEEDBACK_HINTS.get(mode, "")
    return (f"agent {name!r} cannot learn from {mode!r} feedback (it learns from "
            f"{', '.join(sorted(modes))})" + (f": {hint}" if hint else ""))


#: modes of a learner that needs the chosen option's reward every round (bandit learners, UCB rules)
LEARNS_FROM_OWN_REWARD = frozenset({"full", "bandit"})
#: modes of a serve-or-forward learner that needs the local label when it forwards
LEARNS_WITHOUT_LOCAL_LABEL = frozenset({"full", "label_on_forward", "proxy"})
