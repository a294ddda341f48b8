"""Outgoing mail (invitation and password-reset links), only when SMTP is configured.

Settings (``webapp/config.py``; environment variables ``FLAGPOST_SMTP_…``): ``SMTP_HOST``
(mail is sent only when set), ``SMTP_PORT`` (587), ``SMTP_USER`` and ``SMTP_PASSWORD``
(login, when set), ``SMTP_FROM`` (the sender; default ``flagpost@<host>``), ``SMTP_TLS``
(``starttls``, the default; ``ssl`` for implicit TLS; ``none`` only for a local relay).
A failure never loses the link: the page shows it to copy whatever happened to the mail.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

TIMEOUT_SECONDS = 10


def is_configured(config: Mapping[str, Any]) -> bool:
    """Tell whether an SMTP host is configured."""
    return bool(config.get("SMTP_HOST"))


def send(config: Mapping[str, Any], to: str, subject: str, text: str) -> str | None:
    """Send a plain-text mail; return None when sent, else why it was not.

    :param config: the app's configuration (the ``SMTP_*`` settings).
    """
    if not is_configured(config):
        return "no mail server is configured"
    host = str(config["SMTP_HOST"])
    message = EmailMessage()
    message["From"] = config.get("SMTP_FROM") or f"flagpost@{host}"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    tls = str(config.get("SMTP_TLS") or "starttls").lower()
    port = int(config.get("SMTP_PORT") or (465 if tls == "ssl" else 587))
    try:
        if tls == "ssl":
            context = ssl.create_default_context()
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=TIMEOUT_SECONDS, context=context
            )
        else:
            client = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
        with client:
            if tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if config.get("SMTP_USER"):
                client.login(str(config["SMTP_USER"]), str(config.get("SMTP_PASSWORD") or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return f"the mail server refused or could not be reached ({type(exc).__name__})"
    return None
