"""Safe configuration defaults; secrets and deployment values come from elsewhere.

Order of precedence (last wins): these defaults, ``instance/config.py``, environment
variables, then the mapping passed to ``create_app`` (tests).
"""

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    # Dashboards stay open for hours; a token that expires mid-session only loses work.
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    # REMEMBER_COOKIE_SECURE follows SESSION_COOKIE_SECURE unless set (create_app).
    "PORT": 5000,
    # SDK request bodies are small; anything bigger is refused with 413 before parsing.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # Login throttling (webapp/limits.py): failed attempts per client IP and email, and per IP.
    "LOGIN_RATE_LIMIT_PER_EMAIL": "10 per minute",
    "LOGIN_RATE_LIMIT_PER_IP": "30 per minute",
    "RATELIMIT_ENABLED": True,
    # memory:// counts per process; use redis://host:6379/0 when several workers or servers run.
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_STRATEGY": "moving-window",
    # Only the 429 answer says when to retry (Retry-After); other answers carry no counters.
    "RATELIMIT_HEADERS_ENABLED": False,
    # An unreachable counter store is logged and lets logins through rather than locking all out.
    "RATELIMIT_SWALLOW_ERRORS": True,
    # Reverse proxies in front of the app whose X-Forwarded-For is trusted (0: none).
    "TRUSTED_PROXY_COUNT": 0,
    # Mail for invitation and password-reset links (services/mailer.py); none unless a host
    # is set. SMTP_TLS: "starttls" (default), "ssl" (implicit TLS) or "none" (local relay).
    "SMTP_HOST": "",
    "SMTP_PORT": None,
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "SMTP_FROM": "",
    "SMTP_TLS": "starttls",
    # SDK events (experiments): buffered per worker, written every this many seconds
    # (0: only by an explicit flush, as in tests); batches beyond the cap get 503.
    "EVENTS_FLUSH_SECONDS": 2.0,
    "EVENTS_BUFFER_MAX": 200_000,
    # Real-time updates (webapp/realtime/): where pages find the stream server (default:
    # this host on PORT + 1, see create_app), Redis for fan-out between servers (unset:
    # PostgreSQL NOTIFY, or revision polling on SQLite), and the connection caps.
    "STREAM_URL": None,
    "REDIS_URL": None,
    "STREAM_MAX_PER_KEY": 1000,
    "STREAM_MAX_TOTAL": 10000,
    "STREAM_HEARTBEAT_SECONDS": 15.0,
    "STREAM_POLL_SECONDS": 0.5,
    # Page stream tokens (user + environment, signed with SECRET_KEY) last a working day.
    "STREAM_TOKEN_MAX_AGE": 12 * 3600,
    # Usage analytics (services/usage): evaluation counts and "seen" rows, buffered per worker
    # and written every USAGE_FLUSH_INTERVAL seconds (None: only on an explicit flush).
    "USAGE_RECORDING": True,
    "USAGE_FLUSH_INTERVAL": 1.0,
    "USAGE_BUFFER_MAX": 10_000,
    # Days of usage kept; `flask prune-analytics` deletes older counts and seen rows.
    "USAGE_RETENTION_DAYS": 90,
}

ENV_VARS = ("DATABASE_URL", "SECRET_KEY", "PORT", "SESSION_COOKIE_SECURE")
# Environment variables whose setting has another name (prefixed to avoid clashes).
ENV_ALIASES = {
    "FLAGPOST_RATELIMIT_STORAGE_URI": "RATELIMIT_STORAGE_URI",
    "FLAGPOST_TRUSTED_PROXY_COUNT": "TRUSTED_PROXY_COUNT",
    "FLAGPOST_SMTP_HOST": "SMTP_HOST",
    "FLAGPOST_SMTP_PORT": "SMTP_PORT",
    "FLAGPOST_SMTP_USER": "SMTP_USER",
    "FLAGPOST_SMTP_PASSWORD": "SMTP_PASSWORD",
    "FLAGPOST_SMTP_FROM": "SMTP_FROM",
    "FLAGPOST_SMTP_TLS": "SMTP_TLS",
    "FLAGPOST_STREAM_URL": "STREAM_URL",
    "FLAGPOST_REDIS_URL": "REDIS_URL",
    "FLAGPOST_STREAM_MAX_PER_KEY": "STREAM_MAX_PER_KEY",
    "FLAGPOST_STREAM_MAX_TOTAL": "STREAM_MAX_TOTAL",
    "FLAGPOST_USAGE_RECORDING": "USAGE_RECORDING",
    "FLAGPOST_USAGE_RETENTION_DAYS": "USAGE_RETENTION_DAYS",
}


def sqlite_url(instance_path: str) -> str:
    """Return the URL of the embedded SQLite database inside the instance folder."""
    return f"sqlite:///{Path(instance_path) / 'flagpost.sqlite'}"


def normalise_database_url(url: str) -> str:
    """Point bare ``postgres://``/``postgresql://`` URLs at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def from_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    """Read the supported settings from environment variables."""
    found: dict[str, Any] = {}
    for name in ENV_VARS:
        if environ.get(name):
            found[name] = environ[name]
    for variable, name in ENV_ALIASES.items():
        if environ.get(variable):
            found[name] = environ[variable]
    integers = (
        "PORT", "TRUSTED_PROXY_COUNT", "SMTP_PORT", "STREAM_MAX_PER_KEY", "STREAM_MAX_TOTAL",
        "USAGE_RETENTION_DAYS",
    )  # fmt: skip
    for name in integers:
        if name in found:
            found[name] = int(found[name])
    if "USAGE_RECORDING" in found:
        found["USAGE_RECORDING"] = found["USAGE_RECORDING"].lower() in ("1", "true", "yes")
    if "SESSION_COOKIE_SECURE" in found:
        found["SESSION_COOKIE_SECURE"] = found["SESSION_COOKIE_SECURE"].lower() in (
            "1",
            "true",
            "yes",
        )
    return found


def load_or_create_secret_key(instance_path: str) -> str:
    """Return the instance's secret key, generating it once into ``instance/secret_key``."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Create with 0600 so the key is never world-readable, even briefly. O_EXCL makes
    # concurrent first starts (several gunicorn workers) agree on one key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
