"""Slack through slack-sdk: a bot token posting with `chat.postMessage` (alerts about one agent in one thread),
or an incoming webhook. `base_url` points the Web API elsewhere (Enterprise Grid, a test server).

slack-sdk's own retry handlers are off: the outbox owns retries, so a 429's Retry-After pauses the channel
instead of blocking a thread inside the SDK. The SDK's logger is capped at WARNING, so its debug output (which
includes request headers, and so the token) never reaches the engine log.
"""

from __future__ import annotations

import logging
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


class SlackChannel:
    name = "slack"

    def __init__(self, config: SlackConfig, timeout: int = TIMEOUT) -> None:
        self.config = config
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

    def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent:
        text = alert.slack_text(now)
        if self.web is None:
            return self._send_webhook(text)
        try:
            return self._post(text, thread, broadcast=alert.status == FIRING)
        except _ThreadLost:
            return self._post(text, None, broadcast=False)

    def _post(self, text: str, thread: str | None, broadcast: bool) -> Sent:
        assert self.web is not None and self.config.channel is not None
        kwargs: dict[str, Any] = {"channel": self.config.channel, "text": text, "unfurl_links": False,
                                  "unfurl_media": False}
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
            raise DeliveryFailed(self._clean(f"Slack unreachable: {exc}")) from None
        ts = str(response.get("ts") or "")
        started = None if thread else f"{response.get('channel') or self.config.channel}:{ts}"
        return Sent(f"ts {ts}" + (" (thread reply)" if thread else ""), thread or started)

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
