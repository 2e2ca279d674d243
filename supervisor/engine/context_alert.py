"""The `context` trigger: an agent's conversation fills `limits.context_alert` (90%) of its model's context window.

It fires once each time the context crosses the threshold upwards, and is resolved when the context drops below
it again (a compaction, a new conversation). Whether it is firing is stored with the agent (`extra`), so a new
engine neither tells it again nor forgets to resolve it. An agent whose window is unknown (a model without a
`context_window`) has no percentage, and no alert; one that has ended is left as it is (usage read after its end
says nothing new about a conversation that no longer runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.core.triggers import Trigger, fire
from supervisor.usage.totals import Usage

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

KEY = "context_alert"


def check(engine: Engine, name: str, usage: Usage) -> bool | None:
    """Fire or resolve the agent's context alert from its usage now; True fired, False resolved, None neither."""
    percent = usage.context_percent
    if percent is None:
        return None
    threshold = engine.config.limits.context_alert
    agent = engine.store.get_agent(name)
    if agent is None or not agent.state.live or _wanted(threshold, percent) == (KEY in agent.extra):
        return None  # the common case, settled without the agent's lock
    with engine.agent_lock(name):
        agent = engine.store.get_agent(name)
        wanted = _wanted(threshold, percent)
        if agent is None or not agent.state.live or wanted == (KEY in agent.extra):
            return None
        window = f"{usage.context_tokens:,} of {usage.context_window:,} tokens"
        with engine.store.transaction():
            if wanted:
                agent.extra[KEY] = {"percent": percent, "threshold": threshold}
                engine.store.save_agent(agent)
                fire(engine.store, agent, Trigger.CONTEXT,
                     f"its context window is {percent:g}% full ({window}; limits.context_alert: {threshold:g}%)",
                     percent=percent, threshold=threshold, tokens=usage.context_tokens, window=usage.context_window)
            else:
                agent.extra.pop(KEY)
                engine.store.save_agent(agent)
                fire(engine.store, agent, Trigger.CONTEXT, f"its context is down to {percent:g}% ({window})",
                     active=False, percent=percent)
        return wanted


def _wanted(threshold: float | None, percent: float) -> bool:
    return threshold is not None and percent >= threshold
