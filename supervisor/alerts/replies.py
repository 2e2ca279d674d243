"""Answers typed in Slack: `approve` or `deny <reason>` as a reply in an agent's alert thread (SPEC §8).

With a bot token, each agent's alerts form one thread; while an agent waits, its thread is read every few
seconds (`conversations.replies`) for a human's answer, which goes to the same place `supervisor approve`
and `deny` do. Messages already read are remembered in the store, so none is acted on twice. Only the members
listed in `alerts.slack.approvers` answer: anyone else is told so in the thread and nothing changes; without
the list, answers from Slack are off (and the first one in a thread is told how to turn them on).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient

from supervisor.alerts.outbox import Outbox
from supervisor.core.model import State
from supervisor.errors import SupervisorError

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = logging.getLogger(__name__)
POLL_SECONDS = 3.0
IDLE_SECONDS = 60.0  # with no Slack answers configured, it looks at the configuration at least this often
_SDK_LOG = logging.getLogger("supervisor.alerts.slack_sdk")
_EDITED = "message_changed"
# A person's message: plain, "also sent to the channel", or with a file attached; an edit is read (and refused
# as an answer) so that what a message said when first read and what it says now cannot differ unseen.
_SAID_BY_A_PERSON = (None, "thread_broadcast", "file_share", _EDITED)


def parse_answer(text: str) -> tuple[bool, str | None] | None:
    """(allowed, reason) for `approve` / `deny [reason]` (case and a leading mention ignored); else None."""
    words = text.strip().split()
    while words and words[0].startswith("<@"):
        words = words[1:]  # "@supervisor approve"
    if not words:
        return None
    verb = words[0].lower().rstrip(".!:,")
    if verb in ("approve", "approved", "yes"):
        return True, None
    if verb in ("deny", "denied", "no"):
        return False, " ".join(words[1:]) or None
    return None


class SlackReplies:
    def __init__(self, engine: Engine, outbox: Outbox) -> None:
        self.engine = engine
        self.outbox = outbox
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._bell = threading.Event()  # the store was touched (a reloaded supervisor.yaml), or stop
        engine.store.listen_touches(self._bell.set)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slack-replies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._bell.set()

    def _run(self) -> None:
        """Every POLL_SECONDS while Slack answers are configured; else asleep until supervisor.yaml is read
        again (which touches the store) and says so."""
        while not self._stopping.is_set():
            if not self._configured():
                self._bell.wait(IDLE_SECONDS)
                self._bell.clear()
                continue
            if self._stopping.wait(POLL_SECONDS):
                return
            try:
                self.poll_once()
            except Exception:
                log.exception("reading Slack replies failed")

    def _configured(self) -> bool:
        slack = self.engine.config.alerts.slack
        return slack is not None and bool(slack.token) and bool(slack.channel)

    def poll_once(self) -> None:
        slack = self.engine.config.alerts.slack
        if slack is None or not slack.token or not slack.channel:
            return
        waiting = [a for a in self.engine.store.agents() if a.state == State.WAITING]
        if not waiting:
            return
        base_url = (slack.base_url or WebClient.BASE_URL).rstrip("/") + "/"
        web = WebClient(token=slack.token, base_url=base_url, timeout=10, logger=_SDK_LOG, retry_handlers=[])
        for agent in waiting:
            ref = self.outbox.thread(agent.name, f"slack:{slack.channel}")
            if ref:
                self._read_thread(web, agent.name, ref, slack.approvers, agent.state_since)

    def _read_thread(self, web: WebClient, agent: str, ref: str, approvers: tuple[str, ...],
                     waiting_since: float = 0.0) -> None:
        """Act on the answers in the agent's thread posted since it began to wait (one posted before answers
        an earlier request, already settled some other way: it must not settle this one)."""
        channel, _, thread_ts = ref.partition(":")
        key = f"slack.replies.{agent}.{thread_ts}"
        seen = max(self.engine.store.get_meta(key) or thread_ts, f"{waiting_since:.6f}", key=float)
        try:
            response = web.conversations_replies(channel=channel, ts=thread_ts, oldest=seen, inclusive=False)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("cannot read %s's Slack thread: %s", agent, type(exc).__name__)
            return
        for message in response.get("messages") or []:
            ts = str(message.get("ts") or "")
            if not ts or float(ts) <= float(seen) or message.get("bot_id"):
                continue
            self.engine.store.set_meta(key, ts)  # read once, whatever happens next
            seen = ts
            subtype = message.get("subtype")
            if subtype not in _SAID_BY_A_PERSON:
                continue  # joins, bots, deletions: no one's answer
            answer = parse_answer(str(message.get("text") or ""))
            if answer is None:
                continue
            if subtype == _EDITED or message.get("edited"):
                self._once(web, f"slack.edited.{thread_ts}", channel, thread_ts,
                           "An edited message answers nothing (it may have said something else when it was read): "
                           "reply anew with `approve` or `deny <reason>`.")
                continue
            allowed, reason = answer
            who = str(message.get("user") or "")
            if who not in approvers:
                self._refuse(web, agent, channel, thread_ts, who, approvers)
                continue
            try:
                self.engine.answer(agent, allowed, reason, by=f"slack:{who}")
                note = f"{'Approved' if allowed else 'Denied'} by <@{who}>" + (f": {reason}" if reason else "")
            except SupervisorError as exc:
                note = f"Could not {'approve' if allowed else 'deny'}: {exc.message}"
            self._note(web, channel, thread_ts, note)

    def _refuse(self, web: WebClient, agent: str, channel: str, thread_ts: str, who: str,
                approvers: tuple[str, ...]) -> None:
        """An answer from someone not listed changes nothing; said once in the thread (per person, or once at
        all while answers from Slack are off), never again for the same thread."""
        said = f"slack.refused.{thread_ts}.{who if approvers else '*'}"
        if self.engine.store.get_meta(said):
            return
        self.engine.store.set_meta(said, "1")
        if approvers:
            log.warning("%s: a Slack answer from %s, who is not in alerts.slack.approvers, was ignored", agent,
                        who or "an unknown user")
            named = f"<@{who}>" if who else "A message with no Slack member behind it (an app or a bot)"
            note = (f"{named} may not answer approvals: only the people listed in alerts.slack.approvers may. "
                    f"Nothing was changed.")
        else:
            log.warning("%s: a Slack answer was ignored: alerts.slack.approvers lists nobody", agent)
            note = ("Answers from Slack are off, so nothing was changed: list the Slack member ids of the people "
                    "who may approve in alerts.slack.approvers of supervisor.yaml (e.g. approvers: [U024BE7LH]), "
                    f"or answer with `supervisor approve {agent}` / `supervisor deny {agent}`.")
        self._note(web, channel, thread_ts, note)

    def _once(self, web: WebClient, said: str, channel: str, thread_ts: str, text: str) -> None:
        if not self.engine.store.get_meta(said):
            self.engine.store.set_meta(said, "1")
            self._note(web, channel, thread_ts, text)

    @staticmethod
    def _note(web: WebClient, channel: str, thread_ts: str, text: str) -> None:
        with contextlib.suppress(SlackApiError, SlackClientError, OSError):  # only a courtesy note
            web.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
