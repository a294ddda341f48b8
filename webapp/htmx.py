"""Deciding between a full page and an htmx partial, in one place."""

from typing import Any

from flask import Response, make_response, render_template, request


def is_partial_request() -> bool:
    """Tell whether htmx asked for a fragment (not a boosted link or a history restore)."""
    h = request.headers
    return (
        h.get("HX-Request") == "true"
        and h.get("HX-Boosted") != "true"
        and not h.get("HX-History-Restore-Request")
    )


def render_page_or_partial(page: str, partial: str, **context: Any) -> Response:
    """Render the partial for htmx requests and the full page otherwise."""
    template = partial if is_partial_request() else page
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


def hx_redirect(location: str, status: int = 200) -> Response:
    """Tell htmx to navigate the whole page (a 302 would be swapped into the target)."""
    response = make_response("", status)
    response.headers["HX-Redirect"] = location
    return response
