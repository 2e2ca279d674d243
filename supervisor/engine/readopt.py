"""Agents of a host that came back, judged again from what is true there now (SPEC §12): never put back blindly
in the state they had when it dropped.

When a host's link is up again, its agents' sockets listen there again and the hook events they spooled meanwhile
are applied in order (supervisor/engine/remoterequests.py), while they are still `unreachable`. Then each is
looked at as a new engine looks at an agent it adopts: its pane listed and its screen read on the host (what it
printed meanwhile goes into its transcript), and its state decided from those and its hooks, starting from its
`last_state`, so what changed while it was out of sight fires what it would have fired in sight (a turn that ended
is `done`, a dialog that opened is `waiting`, a pane that ended is `exited`). An agent whose pane cannot be read
now returns to its last state, and its host's next tick judges it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from supervisor.core.model import Agent, State
from supervisor.engine.panes import pane_ref
from supervisor.engine.sites import host_site
from supervisor.errors import SupervisorError
from supervisor.hosts.remote.host import RemoteHost

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)


def judge_again(engine: Engine, agent: Agent, state: State) -> bool:
    """Judge `agent` (back from `unreachable`, its last state `state`; the caller holds its lock) from its pane on
    its host now. True when its state was recorded so; False when its pane cannot be read now (the caller puts
    it back in `state`)."""
    host = engine.host_of(agent)
    if not isinstance(host, RemoteHost) or pane_ref(agent) is None:
        return False  # no pane there to look at (being launched, or a record written by hand)
    site = host_site(host)
    try:
        panes = site.tmux.list_panes()
    except SupervisorError as exc:
        log.info("%s: its pane on host %s cannot be read yet (%s): its host's next tick judges it",
                 agent.name, host.name, exc)
        return False
    watcher = engine.watcher
    live = engine.live.get(agent.name)
    info = site.panes.own(agent, panes)
    if live is None:  # an engine started while its host was down
        live = engine.live[agent.name] = watcher.fresh_live(agent)
        if info is not None:
            engine.transcripts.adopt(agent.name, info.server, info.pane, info.history)
    # Looked at as adopted: its screen is read afresh, and what it shows was there before this look (not new
    # output, no new errors); its hooks, applied already, and its screen decide.
    live.adopted, live.progress_key, live.quiet_key = True, None, None
    agent.state = state
    watcher.evaluate(agent, panes, time.time(), site=site)
    watcher.server_ended.settle()
    return True
