"""The contracts the engine keeps: signed in the store (`supervisor.core.seal`), checked before the audit or a
merge uses one, and written for each agent's pre-commit guard (`supervisor.git.contract_file`).

A record whose digest fails (its contract was changed outside the engine: an agent without a sandbox writing
the store, a hand edit) is a `tamper` event and alert, once; until a human confirms it (`supervisor merge NAME
--confirm-contract`, after reading it with `show`) the audit holds the agent to a contract that allows nothing
(so every commit it made is flagged again, the forbidden one among them), its guard refuses every commit, and
`merge` refuses it. Records from before digests existed are signed when an engine first loads them (a
`contract_signed` event each); from then on a record without a digest fails like a changed one.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from supervisor.core.contract import render_contract
from supervisor.core.model import Agent
from supervisor.core.pathrules import PathRules
from supervisor.core.seal import DIGEST, Seal
from supervisor.core.triggers import Trigger, fire
from supervisor.engine.helpers import contract_of
from supervisor.errors import SupervisorError
from supervisor.git import contract_file
from supervisor.paths import ensure_private_dir

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)

TAMPERED = "contract_tampered"  # in an agent's record: {"at", "why"} until a human confirms its contract
SIGNED = "contract_digests"  # store meta: "1" once every record was signed (a missing digest is tampering)
NOTHING = PathRules([])  # the rules of a contract that failed its digest: no path may change


class Contracts:
    """The engine's side of stored contracts (one per engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seal = Seal(engine.paths.contract_key)

    # the engine starts ---------------------------------------------------------------------------------

    def load(self) -> None:
        """Check every stored contract (signing those from before digests), and write every agent's contract
        file: the runtime directory may have been emptied by a reboot since."""
        store = self.engine.store
        first = store.get_meta(SIGNED) != "1"
        for agent in store.agents():
            if first and DIGEST not in agent.extra:
                with self.engine.agent_lock(agent.name):
                    current = store.get_agent(agent.name)
                    if current is None:
                        continue
                    self.seal.sign(current)
                    store.save_agent(current, "contract_signed",
                                     summary="its contract was stored before contracts had digests: signed as it is")
                agent = current
            self.verify(agent)
        store.set_meta(SIGNED, "1")
        for agent in store.agents():
            self.publish(agent)

    # use -----------------------------------------------------------------------------------------------

    def verify(self, agent: Agent) -> bool:
        """Whether the agent's stored contract is the one the engine signed; when not, the tampering is
        recorded and alerted (once) and its contract file says its commits are refused."""
        if self.seal.holds(agent):
            return TAMPERED not in agent.extra
        self._tampered(agent.name)
        return False

    def rules_of(self, agent: Agent) -> PathRules:
        """The path rules the audit and `merge` hold the agent to: its contract's, or none when that failed
        its digest."""
        if not self.verify(agent):
            return NOTHING
        return contract_of(agent, self.engine.paths.root).rules()

    def refusal(self, agent: Agent) -> str | None:
        """Why `merge` refuses the agent for its contract (changed outside the engine), or None."""
        if self.verify(agent):
            return None
        current = self.engine.store.get_agent(agent.name) or agent
        found = current.extra.get(TAMPERED) or {}
        return str(found.get("why") or "its contract was changed outside the engine")

    def _tampered(self, name: str) -> None:
        engine = self.engine
        with engine.agent_lock(name):
            agent = engine.store.get_agent(name)
            if agent is None or (self.seal.holds(agent) and TAMPERED not in agent.extra):
                return
            if TAMPERED in agent.extra:
                self.publish(agent)  # its file says so (it may have been rewritten meanwhile)
                return
            why = ("its contract was changed outside the engine (its digest does not match"
                   + ("; the engine's key was made anew" if self.seal.made else "") + ")"
                   if agent.extra.get(DIGEST) else
                   "its contract was changed outside the engine (its record lost its digest)")
            agent.extra[TAMPERED] = {"at": time.time(), "why": why}
            agent.extra.pop("audited", None)  # audited again, under a contract that allows nothing
            summary = (f"tamper: {why}; its commits are audited as allowing nothing, and `supervisor merge {name}` "
                       f"refuses it until a human reads it (`supervisor show {name}`) and confirms it with "
                       f"`supervisor merge {name} --confirm-contract`")
            engine.store.save_agent(agent, "tamper", contract=True, why=why, summary=summary)
            self.publish(agent)
        log.warning("%s: %s", name, summary)
        fire(engine.store, agent, Trigger.TAMPER, summary, contract=True, why=why)

    def confirm(self, agent: Agent) -> dict[str, Any] | None:
        """A human read the agent's contract and vouches for it (the caller holds its lock and saves it): it
        is signed as it stands. What tampering it clears, if any."""
        found = agent.extra.pop(TAMPERED, None)
        if found is not None or not self.seal.holds(agent):
            agent.extra.pop("audited", None)  # audited again, under the contract confirmed
            agent.extra.pop("violations", None)
        self.seal.sign(agent)
        return found if isinstance(found, dict) else None

    # the guard's file -------------------------------------------------------------------------------------

    def publish(self, agent: Agent) -> None:
        """Write the agent's contract file for its pre-commit guard (said in its events when it cannot be)."""
        paths = self.engine.paths
        text = agent.extra.get("contract")
        if not isinstance(text, str):
            text = render_contract(contract_of(agent, paths.root))  # from before contracts were stored
        refused = None
        if not self.seal.holds(agent) or TAMPERED in agent.extra:
            refused = ("its contract was changed outside the engine; a human must read it and confirm it "
                       f"(`supervisor merge {agent.name} --confirm-contract`)")
        try:
            ensure_private_dir(paths.runtime_dir / "agents")
            ensure_private_dir(paths.agent_runtime(agent.name))
            contract_file.publish(paths.agent_contract(agent.name), agent.name, agent.worktree, agent.target or None,
                                  text, refused)
        except (OSError, SupervisorError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            log.warning("%s: its contract file could not be written (%s): its commits are refused", agent.name, why)
            self.engine.store.append_event(agent.name, "contract_file_failed",
                                           path=str(paths.agent_contract(agent.name)), error=why)



__all__ = ["NOTHING", "SIGNED", "TAMPERED", "Contracts"]
