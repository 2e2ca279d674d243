"""Usage and rate limits (SPEC §4, §14): an agent that hit one is `limited` until the limit lifts.

A limit is known from the CLI's own words: a limit line it printed (the watcher reads fresh lines with the
profile's `limits` patterns), or its hook (Claude Code's StopFailure with `error: rate_limit`). Its record,
`agent.extra["limit"]`, is durable, so a new engine finds the agent still limited and never resumes it twice:

    kind         "usage limit" or "rate limit"
    seen_at      when the limit was seen
    reset_at     the reset the CLI printed (epoch seconds), or None when it gave none
    lifts_at     when the limit has surely lifted (a reset shown to the minute lifts within it)
    line         the CLI's line
    held         why "continue" waits (a person attached, text in its input line), as last said
    resumed_at   when "continue" was (about to be) typed: set before typing, so a crash never types it twice

Not a limit: the CLI retrying by itself within its turn (`retrying`, `attempt 1/10`, or a delay of a few seconds
while its screen still shows it working); a limit whose reset had passed when the engine learned of it (an old
line read again; a hook told late, from the spool); a hook's limit older than a prompt the agent took since.

The limit ends when the agent works again: any hook after it that tells of a turn (a prompt, a tool, a Stop), or
its screen working and changing since; or when `lifts_at` has passed. With `limits.resume_after_limit`,
"continue" is typed into it then, once, unless the CLI shows it continues by itself (Claude Code: `Continuing
automatically at …`) or its screen shows it working; while a person is attached to its session or its input line
holds text, the typing waits (said once, as `limit_resume_held`) and is tried again at the next tick. A limit
with no reset ends only with new work.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

from supervisor.agents import get_profile
from supervisor.agents.limits import RETRY_WITHIN, LimitReading, describe, read_limit, read_limits, retrying
from supervisor.agents.screens import Verdict
from supervisor.core.model import Agent, State
from supervisor.core.triggers import Trigger, fire
from supervisor.errors import SupervisorError
from supervisor.tmux.server import TmuxError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine
    from supervisor.engine.watcher import Live

log = logging.getLogger(__name__)

RESUME_TEXT = "continue"
KEY = "limit"
RETRY_TOLD_EVERY = 60.0  # seconds: a CLI retrying within its turn is said (an event) at most this often


class Limits:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._resuming: set[str] = set()  # agents a thread types "continue" into right now
        self._guard = threading.Lock()
        self._retry_told: dict[str, float] = {}  # agent → when its CLI's retry within a turn was last said

    # seeing a limit ----------------------------------------------------------------------------------

    def seen(self, agent: Agent, lines: list[str], texts: list[str], now: float, working: bool = False) -> None:
        """Limit lines the agent just printed, and each with the rows after it (where a reset may be worded):
        the last that gives a reset tells it; `working`: its screen shows it working. The caller holds the
        agent's lock."""
        kept = [(line, text) for line, text in zip(lines, texts, strict=True)
                if not self._retried(agent, line, text, now, working)]
        if kept:
            index, reading = read_limits([text for _line, text in kept], now)
            self._record(agent, kept[index][0].strip(), reading, now, now)

    def _retried(self, agent: Agent, line: str, text: str, now: float, working: bool) -> bool:
        """Whether the CLI retries by itself within its turn: a passing limit, said as an event (once a minute
        at most: a retry's countdown rewrites its line every second), never `limited`."""
        if not retrying(text):
            reset = read_limit(text, now).reset_at
            if not (working and reset is not None and reset - now <= RETRY_WITHIN):
                return False
        if now - self._retry_told.get(agent.name, -math.inf) >= RETRY_TOLD_EVERY:
            self._retry_told[agent.name] = now
            self.engine.store.append_event(agent.name, "limit_retrying", line=line.strip()[:300])
        return True

    def noticed(self, live: Live, message: str, at: float) -> None:
        """A hook said the turn ended on a limit (any thread): applied by the watcher under the agent's lock."""
        live.limit_notices.append((message, at))

    def _record(self, agent: Agent, line: str, reading: LimitReading, seen_at: float, now: float) -> None:
        """A limit the CLI told at `seen_at`, learned `now`."""
        record = agent.extra.get(KEY)
        # The same limit, told again (its footer, its hook, a retry): only a later reset replaces what is known.
        if record and not record.get("resumed_at") \
                and (reading.reset_at is None or (record.get("reset_at") or 0) >= reading.reset_at):
            return
        if reading.lifts_at is not None and reading.lifts_at <= now:
            # Over before the engine knew of it (an old line read again, a hook told late): it holds nothing, and
            # "continue" typed now would go into an agent that may have moved on.
            self._ignore(agent, line, "its reset had passed when it was seen", reset_at=reading.reset_at)
            return
        agent.extra[KEY] = {"kind": reading.kind, "seen_at": seen_at, "reset_at": reading.reset_at,
                            "lifts_at": reading.lifts_at, "line": line[:300]}
        self.engine.store.save_agent(agent, "limit", limit=agent.extra[KEY])

    # deciding --------------------------------------------------------------------------------------

    def holds(self, agent: Agent, live: Live, now: float) -> str | None:
        """The reason the agent is limited now (its `waiting_reason`), or None when no limit holds it. The
        caller (the watcher) holds the agent's lock."""
        while live.limit_notices:
            message, at = live.limit_notices.pop(0)
            if at < max(live.prompted_at, live.worked_at):  # told late: the agent took a prompt, or worked, since
                self._ignore(agent, message, "the agent went on after it")
                continue
            self._record(agent, message, read_limit(message, at), at, now)
        record: dict[str, Any] | None = agent.extra.get(KEY)
        if not record:
            return None
        if self._works_since(live, float(record["seen_at"])):
            self._end(agent, "it works again")
            return None
        reason = describe(LimitReading(record["kind"], record.get("reset_at")), now)
        if record.get("resumed_at"):
            with self._guard:
                if agent.name in self._resuming:
                    return reason  # "continue" is being typed
            self._end(agent, "resumed")  # typed, or a crash came between the record and the typing: never twice
            return None
        lifts_at = record.get("lifts_at")
        if lifts_at is None or now < float(lifts_at):
            return reason
        if live.reading.verdict == Verdict.WORKING:  # never "continue" into a turn that runs
            self._end(agent, "its reset has passed, and it works")
            return None
        if self.engine.config.limits.resume_after_limit and not self._resumes_itself(agent, live):
            held = self._held(agent, live)
            if held is None:
                self._resume(agent, record)
            elif record.get("held") != held:
                record["held"] = held
                self.engine.store.save_agent(agent, "limit_resume_held", why=held, text=RESUME_TEXT)
            return reason
        self._end(agent, "its reset has passed")
        return None

    @staticmethod
    def _works_since(live: Live, since: float) -> bool:
        """The agent went on after the limit was seen: a hook told of a turn (a prompt, a tool, a Stop: not the
        limit's own StopFailure), or its screen shows it working and has changed since."""
        if live.worked_at > since:
            return True
        return live.reading.verdict == Verdict.WORKING and max(live.reading_since, live.screen_changed_at) > since

    def _resumes_itself(self, agent: Agent, live: Live) -> bool:
        pattern = get_profile(agent.profile).resumes_after_limit
        return pattern is not None and live.screen is not None and pattern.search(live.screen) is not None

    def _ignore(self, agent: Agent, line: str, why: str, **data: Any) -> None:
        self.engine.store.append_event(agent.name, "limit_ignored", line=line.strip()[:300], why=why, **data)

    def _end(self, agent: Agent, why: str) -> None:
        """The limit no longer holds the agent (its state follows; leaving `limited` resolves the alert)."""
        agent.extra.pop(KEY, None)
        self.engine.store.save_agent(agent, "limit_lifted", why=why)

    # resuming --------------------------------------------------------------------------------------

    def _held(self, agent: Agent, live: Live) -> str | None:
        """Why "continue" must not be typed now (it is tried again at the next tick), or None: a person is at
        the agent's session (their keys and ours would mix), or its input line holds text (a half-typed prompt
        would get "continue" added to it, and be sent)."""
        rules = get_profile(agent.profile).screen
        typed = rules.typed(live.screen) if rules is not None and live.screen is not None else None
        if typed:
            return f"its input line holds text: {typed[:80]}"
        try:
            if self.engine.panes.attached(agent):
                return "a person is attached to its session"
        except TmuxError as exc:
            return f"tmux could not tell who is attached: {exc}"
        return None

    def _resume(self, agent: Agent, record: dict[str, Any]) -> None:
        """Type "continue" into the agent (off the watcher's thread), once: what was done is stored first."""
        record["resumed_at"] = time.time()
        self.engine.store.save_agent(agent, "limit_resuming", text=RESUME_TEXT)
        with self._guard:
            self._resuming.add(agent.name)
        threading.Thread(target=self._type_continue, args=(agent.name,), daemon=True).start()

    def _type_continue(self, name: str) -> None:
        try:
            self.engine.op_send(name, RESUME_TEXT)
        except SupervisorError as exc:
            self.engine.store.append_event(name, "limit_resume_failed", error=str(exc))
        except Exception:
            log.exception("%s: typing continue after its limit failed", name)
            self.engine.store.append_event(name, "limit_resume_failed", error="internal error, see engine.log")
        finally:
            with self._guard:
                self._resuming.discard(name)

    # the state ---------------------------------------------------------------------------------------

    def changed(self, agent: Agent, previous: State, new: State, reason: str | None, screen: list[str]) -> None:
        """An agent's state changes (`Engine.set_state`, before the record is written): fire the `limited`
        trigger on the way in, as `limits.on_limit` says (`alert`; `wait`: the state alone), and resolve it on
        the way out. Leaving `limited` by any path (a prompt sent, a stop) ends the limit's record, and so does a
        launch (a restart sets `starting` first): a limit that still holds shows again in the CLI's answer."""
        leaving = previous == State.LIMITED and new != State.LIMITED
        if (leaving or new == State.STARTING) and (agent.extra.pop(KEY, None) is not None or leaving):
            fire(self.engine.store, agent, Trigger.LIMITED, f"the limit lifted ({new})", active=False)
        if new == State.LIMITED and previous != State.LIMITED and self.engine.config.limits.on_limit == "alert":
            record = agent.extra.get(KEY) or {}
            fire(self.engine.store, agent, Trigger.LIMITED, f"{reason}: {record.get('line') or 'limited'}",
                 screen=screen, reset_at=record.get("reset_at"), reason=reason)
