"""Error pages: JSON under the APIs, HTML pages elsewhere, and htmx-friendly answers."""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import HTTPException, InternalServerError

from .api_paths import is_api_request
from .htmx import is_partial_request
from .services.errors import DomainError


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DomainError, _domain_error)


def _toast_headers(message: str) -> dict[str, str]:
    # htmx does not swap 4xx bodies; the page's script shows this event as a toast instead.
    return {"HX-Trigger": json.dumps({"show-message": {"level": "error", "message": message}})}


def error_response(status: int, title: str, message: str) -> Response:
    """Render an error the way the caller can best show it."""
    if is_api_request():
        response = jsonify({"detail": message})
        response.status_code = status
        return response
    if request.headers.get("HX-Request") == "true":
        # htmx swaps 409/422 bodies as HTML, and messages can quote what the user typed.
        return make_response(escape(message), status, _toast_headers(message))
    page = render_template("errors/error.html", status=status, title=title, message=message)
    return make_response(page, status)


def _csrf_error(exc: CSRFError) -> Response:
    if is_partial_request():
        # A stale page (e.g. after a restart with a new session) needs a fresh token.
        return make_response("", 400, {"HX-Refresh": "true"})
    return error_response(
        400,
        "Form expired",
        "The form was stale or missing its security token. Reload the page and try again.",
    )


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, InternalServerError):
        return error_response(500, "Server error", "Something went wrong on our side.")
    status = exc.code or 500
    return error_response(status, exc.name, exc.description or exc.name)


def _domain_error(exc: DomainError) -> Response:
    return error_response(exc.status, "Request refused", str(exc))
