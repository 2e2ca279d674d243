"""Email delivery against real aiosmtpd servers: STARTTLS and implicit TLS with a certificate made in the test
and trusted through `ca_file`, login, plain relays, an untrusted certificate, and a server that is down then up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.alerts.channels.email import EmailChannel
from supervisor.config import EmailConfig
from tests.alert_servers import Certificate, Rigs, SmtpServer, make_certificate
from tests.conftest import wait_until

PASSWORD = "s3cret-smtp-password"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rigs]:
    monkeypatch.setenv("SUPERVISOR_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    rigs = Rigs(tmp_path)
    yield rigs
    rigs.close()


@pytest.fixture
def servers() -> Iterator[list[SmtpServer]]:
    started: list[SmtpServer] = []
    yield started
    for server in started:
        server.stop()


def email_config(server: SmtpServer, security: str, ca_file: Path | None = None, login: bool = False) -> str:
    lines = ["  group_wait: 0.1s", "  email:", "    host: 127.0.0.1", f"    port: {server.port}",
             f"    security: {security}", "    sender: supervisor@example.com",
             "    to: [me@example.com, you@example.com]"]
    if ca_file is not None:
        lines.append(f"    ca_file: {ca_file}")
    if login:
        lines += ["    username: bot", '    password: "${SMTP_PASSWORD}"']
    return "\n".join(lines) + "\n"


def sent(r: Any, count: int) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        alerts = r.history()
        ok = len(alerts) == count and all(d["status"] == "sent" for a in alerts for d in a["deliveries"])
        return alerts if ok else None

    return list(wait_until(done, timeout=20, message=f"{count} alerts sent"))


def test_starttls_with_login_and_a_certificate_trusted_through_ca_file(
        rig: Rigs, servers: list[SmtpServer], certificate: Certificate) -> None:
    server = SmtpServer("starttls", certificate, login=("bot", PASSWORD)).start()
    servers.append(server)
    r = rig(email_config(server, "starttls", certificate.cert, login=True))
    r.fire("auth", "waiting", "waiting for approval: Bash(git push)", task="Harden the auth package",
           screen=["Allow git push?", "❯ 1. Yes"])
    sent(r, 1)
    r.fire("auth", "waiting", "approved", active=False)
    sent(r, 2)
    first, resolved = server.received()
    assert server.envelopes[0] == ("supervisor@example.com", ["me@example.com", "you@example.com"])
    assert first["Subject"] == "[supervisor] repo: auth waiting — waiting for approval: Bash(git push)"
    body = first.get_payload(decode=True).decode()
    for expected in ("repo:  repo", "agent: auth", "waiting (for ", "Harden the auth package", "Allow git push?",
                     "supervisor approve auth", "supervisor attach auth", "supervisor show auth"):
        assert expected in body
    assert PASSWORD not in body
    assert "resolved waiting" in resolved["Subject"]
    assert first["Message-ID"] != resolved["Message-ID"]
    assert first["References"] == resolved["References"]  # one thread per agent in a mail client


def test_implicit_tls(rig: Rigs, servers: list[SmtpServer], certificate: Certificate) -> None:
    server = SmtpServer("ssl", certificate).start()
    servers.append(server)
    r = rig(email_config(server, "ssl", certificate.cert))
    r.fire("ui", "exited", "exited with code 3", exit_code=3)
    sent(r, 1)
    (message,) = server.received()
    assert "exit_code=3" in message.get_payload(decode=True).decode()


def test_an_untrusted_certificate_is_refused_until_ca_file_trusts_it(
        rig: Rigs, servers: list[SmtpServer], certificate: Certificate) -> None:
    server = SmtpServer("starttls", certificate).start()
    servers.append(server)
    r = rig(email_config(server, "starttls"))
    r.fire("auth", "done", "finished its turn")

    def refused() -> bool:
        alerts = r.history()
        return bool(alerts) and alerts[0]["deliveries"][0]["attempts"] >= 1

    wait_until(refused, message="a refused attempt")
    assert "CERTIFICATE_VERIFY_FAILED" in r.history()[0]["deliveries"][0]["last_error"]
    assert server.received() == []
    rig.reconfigure(email_config(server, "starttls", certificate.cert))
    wait_until(lambda: r.engine.reload_config_if_changed() or r.engine.config.alerts.email.ca_file is not None,
               message="the reloaded config")
    sent(r, 1)
    assert len(server.received()) == 1


def test_a_relay_that_is_down_then_up_gets_the_alert_once(rig: Rigs, servers: list[SmtpServer]) -> None:
    server = SmtpServer("plain")
    r = rig(email_config(server, "plain"))
    r.fire("auth", "stalled", "no output for 10m")

    def failing() -> bool:
        alerts = r.history()
        return bool(alerts) and alerts[0]["deliveries"][0]["attempts"] >= 2

    wait_until(failing, message="two failed attempts")
    assert "Connection refused" in r.history()[0]["deliveries"][0]["last_error"]
    servers.append(server.start())
    sent(r, 1)
    assert len(server.received()) == 1


def test_reachability_check_connects_ehlo_starttls_and_login(
        servers: list[SmtpServer], certificate: Certificate) -> None:
    server = SmtpServer("starttls", certificate, login=("bot", PASSWORD)).start()
    servers.append(server)

    def check(**overrides: Any) -> Any:
        settings: dict[str, Any] = {"host": "127.0.0.1", "sender": "s@example.com", "to": ("me@example.com",),
                                    "port": server.port, "ca_file": certificate.cert, "username": "bot",
                                    "password": PASSWORD}
        return EmailChannel(EmailConfig(**{**settings, **overrides}), "x").check()

    good = check()
    assert good.ok and "starttls" in good.detail and "logged in as bot" in good.detail
    wrong = check(password="wrong-password")
    assert not wrong.ok and "wrong-password" not in wrong.detail and "password" in (wrong.hint or "")
    untrusted = check(ca_file=None)
    assert not untrusted.ok and "ca_file" in (untrusted.hint or "")
    server.stop()
    down = check()
    assert not down.ok and "refused" in down.detail.lower()
    assert server.received() == []  # a check never sends
