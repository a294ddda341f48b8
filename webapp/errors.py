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


# Our words for the statuses a person can meet; Werkzeug's defaults ("You don't have the
# permission to access the requested resource. It is either read-protected…") are for servers.
PAGE_WORDS: dict[int, tuple[str, str]] = {
    400: ("Request not understood", "The page sent something we could not read. Go back, "
          "reload the page and try again."),
    401: ("Please sign in", "Sign in to see this page."),
    403: ("Not allowed", "Your role in this project does not allow this. Ask a project admin "
          "if you need it."),
    404: ("Not found", "There is nothing here: the link is wrong, or what it pointed to was "
          "deleted."),
    405: ("Not available this way", "This address does not do that. Use the buttons and links "
          "on the pages."),
    409: ("Changed meanwhile", "Someone changed this while you were looking. Reload the page "
          "and try again."),
    413: ("Too large", "What you sent is larger than we accept."),
    415: ("Not understood", "What you sent is in a form we do not accept."),
    422: ("Not accepted", "Some of what you sent is not valid. Go back and check it."),
    429: ("Too many attempts", "Too many attempts in a short time. Wait a minute and try again."),
    500: ("Server error", "Something went wrong on our side."),
}
GENERIC_WORDS = ("Something went wrong", "That did not work. Go back and try again.")


def page_words(status: int) -> tuple[str, str]:
    """Return the title and message shown to a person for an HTTP status."""
    if status in PAGE_WORDS:
        return PAGE_WORDS[status]
    return GENERIC_WORDS if status < 500 else PAGE_WORDS[500]


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, InternalServerError):
        return error_response(500, *page_words(500))
    status = exc.code or 500
    if is_api_request():
        return error_response(status, exc.name, exc.description or exc.name)
    title, message = page_words(status)
    # A description a view chose (abort(404, "No such segment")) says more than ours.
    if exc.description and exc.description != type(exc).description:
        message = exc.description
    return error_response(status, title, message)


def _domain_error(exc: DomainError) -> Response:
    return error_response(exc.status, "Request refused", str(exc))
