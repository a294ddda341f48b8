"""Cookie sessions for the dashboard only.

The SDK API and OFREP authenticate by environment key and never read the session, yet
Flask opens one (verifying the signed cookie) for every request. Skipping it there saves
real time on the identify hot path; those requests get Flask's null session instead.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from .api_paths import API_PREFIXES


class DashboardSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions, not opened for requests to the key-authenticated APIs."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(API_PREFIXES):
            return None  # Flask substitutes a null session, which is never saved
        return super().open_session(app, request)
