"""Slack through slack-sdk: a bot token posting with `chat.postMessage` (alerts about one agent in one thread),
or an incoming webhook. `base_url` points the Web API elsewhere (Enterprise Grid, a test server).

With a bot token every alert carries a unique id in Slack's message metadata (`event_type` supervisor_alert,
`event_payload.id` = this repository's instance id and the alert's id), so a message whose post may have got
through before a crash is looked for (`conversations.replies` in its thread, `conversations.history` for a
thread's first message) instead of being posted twice. A webhook cannot be read back: at least once.

slack-sdk's own retry handlers are off: the outbox owns retries, so a 429's Retry-After pauses the channel
instead of blocking a thread inside the SDK. The SDK's logger is capped at WARNING, so its debug output (which
includes request headers, and so the token) never reaches the engine log.
"""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from supervisor.alerts.channels.base import DeliveryFailed, Reachability, Sent
from supervisor.alerts.content import FIRING, AlertContent, redact
from supervisor.config import SlackConfig

TIMEOUT = 15
_SDK_LOG = logging.getLogger("supervisor.alerts.slack_sdk")
_SDK_LOG.setLevel(logging.WARNING)
# Replies in a thread whose first message is gone: start a new thread rather than retry forever.
_LOST_THREAD = frozenset({"thread_not_found", "message_not_found", "invalid_thread_ts"})
EVENT_TYPE = "supervisor_alert"
SKEW = 900.0  # how far before an attempt's start to look for it: Slack's clock is not ours
PAGES = 10  # pages of 200 messages looked through at most
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
log = logging.getLogger(__name__)


class SlackChannel:
    name = "slack"

    def __init__(self, config: SlackConfig, instance: str = "", timeout: int = TIMEOUT) -> None:
        self.config = config
        self.instance = instance  # tells this repository's alerts from another's in the same channel
        self._channel_id: str | None = None
        self.web: WebClient | None = None
        self.webhook: WebhookClient | None = None
        if config.token and config.channel:
            base_url = config.base_url or WebClient.BASE_URL
            self.web = WebClient(token=config.token, base_url=base_url.rstrip("/") + "/", timeout=timeout,
                                 logger=_SDK_LOG, retry_handlers=[])
        elif config.webhook_url:
            self.webhook = WebhookClient(config.webhook_url, timeout=timeout, logger=_SDK_LOG, retry_handlers=[])
        else:
            raise ValueError("alerts.slack needs token and channel, or webhook_url")

    @property
    def thread_key(self) -> str | None:
        return f"slack:{self.config.channel}" if self.web is not None else None

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(secret for secret in (self.config.token, self.config.webhook_url) if secret)

    def event_id(self, alert: AlertContent) -> str:
        return f"{self.instance}:{alert.alert_id}"

    def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent:
        text = alert.slack_text(now)
        if self.web is None:
            return self._send_webhook(text)
        metadata = None if alert.test else {"event_type": EVENT_TYPE, "event_payload": {"id": self.event_id(alert)}}
        try:
            return self._post(text, thread, broadcast=alert.status == FIRING, metadata=metadata)
        except _ThreadLost:
            return self._post(text, None, broadcast=False, metadata=metadata)

    def _post(self, text: str, thread: str | None, broadcast: bool, metadata: dict[str, Any] | None) -> Sent:
        assert self.web is not None and self.config.channel is not None
        kwargs: dict[str, Any] = {"channel": self.config.channel, "text": text, "unfurl_links": False,
                                  "unfurl_media": False, "metadata": metadata}
        if thread:
            channel_id, _, ts = thread.partition(":")
            # A reply that is also shown in the channel: nobody follows a bot's thread, so a firing alert
            # must still be seen; "resolved" stays in the thread.
            kwargs.update(channel=channel_id, thread_ts=ts, reply_broadcast=broadcast)
        try:
            response = self.web.chat_postMessage(**kwargs)
        except SlackApiError as exc:
            error = _api_error(exc)
            if thread and error in _LOST_THREAD:
                raise _ThreadLost from None
            raise self._failure(exc, error) from None
        except (SlackClientError, OSError, ValueError) as exc:
            raise DeliveryFailed(self._clean(f"Slack unreachable: {exc}"), maybe_sent=_maybe_sent(exc)) from None
        ts = str(response.get("ts") or "")
        if response.get("channel"):
            self._channel_id = str(response["channel"])
        started = None if thread else f"{response.get('channel') or self.config.channel}:{ts}"
        return Sent(f"ts {ts}" + (" (thread reply)" if thread else ""), thread or started)

    # reading back what an interrupted attempt posted ------------------------------------------------------

    def recall(self, alert: AlertContent, thread: str | None, since: float, elsewhere: str | None) -> Sent | None:
        """The message an earlier attempt (started at `since`) posted for `alert`, found by its metadata id:
        in `thread`, or among the channel's messages for a thread's first one. None: not there, or it cannot
        be looked for (a webhook, a token without channels:history): then it is sent again."""
        if self.web is None or alert.test:
            return None
        event, oldest = self.event_id(alert), since - SKEW
        try:
            if thread:
                channel_id, _, thread_ts = thread.partition(":")
                try:
                    ts = self._find(channel_id, event, oldest, thread_ts)
                    return Sent(f"ts {ts} (thread reply; found in Slack, not posted again)", thread) if ts else None
                except _ThreadLost:  # then the earlier attempt started a new thread, if it got through
                    pass
            else:
                found_id = self._resolve_channel(elsewhere)
                if found_id is None:
                    log.warning("cannot tell the id of Slack channel %s: alert %d is posted again if it was sent",
                                self.config.channel, alert.alert_id)
                    return None
                channel_id = found_id
            ts = self._find(channel_id, event, oldest, None)
        except _CannotRead as exc:
            log.warning("cannot read Slack channel %s (%s): alert %d is posted again if it was sent",
                        self.config.channel, exc, alert.alert_id)
            return None
        return Sent(f"ts {ts} (found in Slack, not posted again)", f"{channel_id}:{ts}") if ts else None

    def _find(self, channel: str, event: str, oldest: float, thread_ts: str | None) -> str | None:
        """The ts of the message with metadata id `event`, in a thread or at the channel's top level."""
        assert self.web is not None
        method: Callable[..., Any] = self.web.conversations_replies if thread_ts else self.web.conversations_history
        kwargs: dict[str, Any] = {"channel": channel, "oldest": f"{oldest:.6f}", "limit": 200,
                                  "include_all_metadata": True}
        if thread_ts:
            kwargs["ts"] = thread_ts
        for _ in range(PAGES):
            response = self._read(method, **kwargs)
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == EVENT_TYPE and \
                        (metadata.get("event_payload") or {}).get("id") == event and message.get("ts"):
                    return str(message["ts"])
            kwargs["cursor"] = (response.get("response_metadata") or {}).get("next_cursor")
            if not kwargs["cursor"]:
                return None
        return None

    def _resolve_channel(self, elsewhere: str | None) -> str | None:
        """The configured channel's id (`conversations.history` takes no name): from a post or thread of ours,
        the configuration, or `conversations.list`."""
        assert self.web is not None and self.config.channel is not None
        if self._channel_id:
            return self._channel_id
        if elsewhere:
            return elsewhere.partition(":")[0]
        if _CHANNEL_ID.fullmatch(self.config.channel):
            return self.config.channel
        name, cursor = self.config.channel.lstrip("#"), None
        for _ in range(PAGES):
            response = self._read(self.web.conversations_list, types="public_channel,private_channel",
                                  exclude_archived=True, limit=1000, cursor=cursor)
            for channel in response.get("channels") or []:
                if channel.get("name") == name and channel.get("id"):
                    self._channel_id = str(channel["id"])
                    return self._channel_id
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return None

    def _read(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            error = _api_error(exc)
            status = getattr(exc.response, "status_code", None) or 0
            if error in _LOST_THREAD:
                raise _ThreadLost from None
            if status == 429 or status >= 500:
                raise self._failure(exc, error) from None
            raise _CannotRead(error) from None  # missing_scope, not_in_channel, ...: asking again will not help
        except (SlackClientError, OSError, ValueError) as exc:
            raise DeliveryFailed(self._clean(f"Slack unreachable: {exc}")) from None

    def _send_webhook(self, text: str) -> Sent:
        assert self.webhook is not None
        try:
            response = self.webhook.send(text=text, unfurl_links=False, unfurl_media=False)
        except (SlackClientError, OSError, ValueError) as exc:
            raise DeliveryFailed(self._clean(f"Slack webhook unreachable: {exc}")) from None
        if response.status_code == 200:
            return Sent("webhook accepted")
        retry_after = _retry_after(response.headers) if response.status_code == 429 else None
        body = (response.body or "").strip()[:120]
        raise DeliveryFailed(self._clean(f"Slack webhook answered HTTP {response.status_code}: {body}"), retry_after)

    def _failure(self, exc: SlackApiError, error: str) -> DeliveryFailed:
        status = getattr(exc.response, "status_code", None)
        if status == 429:
            retry_after = _retry_after(getattr(exc.response, "headers", {}) or {})
            return DeliveryFailed(f"Slack rate limit (HTTP 429), retry after {retry_after:.0f}s", retry_after)
        return DeliveryFailed(self._clean(f"Slack refused the message (HTTP {status}): {error}"))

    def _clean(self, text: str) -> str:
        return redact(text, self.secrets)

    def check(self) -> Reachability:
        """`auth.test` for a token; for a webhook, only whether it is configured (testing it would post)."""
        if self.web is None:
            return Reachability(True, "incoming webhook configured (`supervisor alerts test` posts a test message)")
        try:
            response = self.web.auth_test()
        except SlackApiError as exc:
            error = _api_error(exc)
            hint = "check SLACK_BOT_TOKEN" if error in ("invalid_auth", "not_authed", "token_revoked") else None
            return Reachability(False, f"auth.test failed: {error}", hint)
        except (SlackClientError, OSError, ValueError) as exc:
            return Reachability(False, self._clean(f"Slack unreachable: {exc}"), "check the network or base_url")
        who = f"{response.get('user') or '?'} in {response.get('team') or '?'}"
        return Reachability(True, f"token valid ({who}), posting to {self.config.channel}")


class _ThreadLost(Exception):
    pass


class _CannotRead(Exception):
    pass


def _maybe_sent(exc: BaseException) -> bool:
    """Whether a request that failed this way may have reached Slack: no answer came (a timeout, a dropped
    connection), as opposed to a connection that was never made."""
    reason = getattr(exc, "reason", None)
    unanswered = (TimeoutError, ConnectionResetError, http.client.HTTPException)
    return isinstance(exc, unanswered) or isinstance(reason, unanswered)


def _api_error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown error")[:200]
    return "unknown error"


def _retry_after(headers: Any) -> float:
    """Retry-After in seconds from a response's headers (any capitalisation); 1 s when absent or odd."""
    value: Any = None
    try:
        for key in headers:
            if str(key).lower() == "retry-after":
                value = headers[key]
                break
    except TypeError:
        return 1.0
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, min(float(str(value)), 3600.0))
    except (TypeError, ValueError):
        return 1.0
