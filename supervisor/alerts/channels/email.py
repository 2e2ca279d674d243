"""Email through SMTP: STARTTLS (default) or implicit TLS, both verifying the server's certificate against the
system's CAs plus `ca_file`; or plain, for a local relay.

STARTTLS is never optional: a server that does not offer it is a failed delivery, not a silent downgrade. Each
alert has a stable Message-ID (a resend after a crash is the same message to a mail client) and refers to one
thread id per subject (an agent, or e.g. supervisor's tmux server), so a mail client threads them together.
"""

from __future__ import annotations

import hashlib
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from supervisor.alerts.channels.base import DeliveryFailed, Reachability, Sent
from supervisor.alerts.content import AlertContent, redact
from supervisor.config import EmailConfig

TIMEOUT = 20.0


class EmailChannel:
    name = "email"

    def __init__(self, config: EmailConfig, instance: str, timeout: float = TIMEOUT) -> None:
        self.config = config
        self.instance = instance  # distinguishes this repository's message ids from another's
        self.timeout = timeout

    @property
    def thread_key(self) -> str | None:
        return None

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.config.password,) if self.config.password else ()

    def tls_context(self) -> ssl.SSLContext:
        cafile = str(self.config.ca_file) if self.config.ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def connect(self) -> smtplib.SMTP:
        """An SMTP session, encrypted as configured and logged in when a username is set."""
        config = self.config
        smtp: smtplib.SMTP
        if config.security == "ssl":
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=self.timeout, context=self.tls_context())
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if config.security == "starttls":
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def message(self, alert: AlertContent, now: float) -> EmailMessage:
        domain = f"{self.instance}.supervisor.invalid"
        message = EmailMessage()
        message["Subject"] = f"[supervisor] {alert.title()}"
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.to)
        message["Date"] = formatdate(now, localtime=False)
        unique = f"test.{int(now * 1000)}" if alert.test else str(alert.alert_id)
        message["Message-ID"] = f"<alert.{unique}@{domain}>"
        if not alert.test:
            agent = hashlib.sha256(alert.agent.encode()).hexdigest()[:16]
            message["References"] = f"<agent.{agent}@{domain}>"
            message["In-Reply-To"] = f"<agent.{agent}@{domain}>"
        if alert.about_agent:
            message["X-Supervisor-Agent"] = alert.agent
        else:
            message["X-Supervisor-Subject"] = alert.agent
            message["X-Supervisor-Agents"] = " ".join(alert.agents)
        message["X-Supervisor-Status"] = "test" if alert.test else alert.status
        message.set_content(alert.text(now))
        return message

    def send(self, alert: AlertContent, thread: str | None, now: float) -> Sent:
        try:
            with self.connect() as smtp:
                refused = smtp.send_message(self.message(alert, now))
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(self._describe(exc)) from None
        accepted = len(self.config.to) - len(refused)
        return Sent(f"accepted for {accepted} of {len(self.config.to)} recipient(s)")

    def check(self) -> Reachability:
        """Connect, EHLO, STARTTLS when configured, and log in when a username is set; nothing is sent."""
        config = self.config
        try:
            with self.connect() as smtp:
                smtp.noop()
        except (smtplib.SMTPException, OSError) as exc:
            hint = "check alerts.email host, port and security"
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                hint = "check alerts.email username and password (SMTP_USER / SMTP_PASSWORD)"
            elif isinstance(exc, ssl.SSLError):
                hint = "the certificate is not trusted: set alerts.email.ca_file, or check host and security"
            return Reachability(False, self._describe(exc), hint)
        login = f", logged in as {config.username}" if config.username else ""
        return Reachability(True, f"{config.host}:{config.port} ({config.security}{login})")

    def _describe(self, exc: BaseException) -> str:
        where = f"{self.config.host}:{self.config.port}"
        if isinstance(exc, smtplib.SMTPResponseException):
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            detail = f"SMTP {exc.smtp_code} {text}"
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            detail = "the server does not offer STARTTLS (set security: ssl or plain if that is intended)"
        elif isinstance(exc, socket.timeout | TimeoutError):
            detail = "timed out"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return redact(f"email via {where} failed: {detail}"[:400], self.secrets)
