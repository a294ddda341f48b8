"""OpenFeature Remote Evaluation Protocol endpoints under /ofrep/v1 (CSRF-exempt)."""

from __future__ import annotations

import hashlib

import orjson
from flask import Blueprint, Response, g, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from ..clock import utcnow
from ..services import usage
from ..services.sdk import ofrep
from ..services.sdk.parsing import BadRequest, parse_json
from .key_api import authenticate_key, json_response

bp = Blueprint("ofrep", __name__, url_prefix="/ofrep/v1")


class FlagKeyConverter(PathConverter):
    """Any non-empty key, newlines included, so every key gets OFREP's FLAG_NOT_FOUND answer.

    Werkzeug's ``path`` stops at a newline, which turned such keys into a bare 404.
    """

    regex = "[^/](?s:.)*?"


@bp.record_once
def _add_flag_key_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("flag_key", FlagKeyConverter)


def _key_from_headers() -> str | None:
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return request.headers.get("X-Environment-Key") or request.headers.get("X-API-Key")


@bp.before_request
def authenticate() -> Response | None:
    """Accept the environment key as Bearer token, X-Environment-Key or X-API-Key."""
    key = _key_from_headers()
    if not key:
        return json_response({"errorDetails": "Missing environment key"}, 401)
    if not authenticate_key(key):
        return json_response({"errorDetails": "Invalid environment key"}, 403)
    return None


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    detail = exc.description or exc.name
    if exc.code == 400:  # e.g. a NUL in the address: OFREP's failure shape, with errorCode
        key = request.view_args.get("key") if request.view_args else None
        return json_response(ofrep.failure_json(key, "GENERAL", detail), 400)
    return json_response({"errorDetails": detail}, exc.code or 500)


@bp.errorhandler(ofrep.OfrepError)
def ofrep_error(exc: ofrep.OfrepError) -> Response:
    key = request.view_args.get("key") if request.view_args else None
    return json_response(ofrep.failure_json(key, exc.code, exc.detail), exc.status)


def _context() -> ofrep.OfrepContext:
    body = request.get_data(cache=False)
    if not body.strip():
        return ofrep.parse_request(None)
    try:
        return ofrep.parse_request(parse_json(body))
    except BadRequest as exc:
        raise ofrep.OfrepError("PARSE_ERROR", str(exc)) from exc


@bp.post("/evaluate/flags/<flag_key:key>")
def evaluate_flag(key: str) -> Response:
    """Evaluate one flag for the context's targeting key."""
    context = _context()
    payload = ofrep.evaluate_one(g.bundle, g.key_info.is_server, context, key, utcnow())
    usage.record_evaluated(g.bundle, [key], g.key_info.is_server, utcnow())
    return json_response({**payload, "cacheable": False})


@bp.post("/evaluate/flags")
def evaluate_flags() -> Response:
    """Evaluate every flag; answers 304 when If-None-Match carries the current ETag."""
    items = ofrep.evaluate_all(g.bundle, g.key_info.is_server, _context(), utcnow())
    evaluated = (item["key"] for item in items if "errorCode" not in item)
    usage.record_evaluated(g.bundle, evaluated, g.key_info.is_server, utcnow())
    body = orjson.dumps({"flags": items})
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if etag in request.headers.get("If-None-Match", ""):
        response = Response(status=304)
    else:
        response = Response(body, mimetype="application/json")
    response.headers["ETag"] = etag
    return response
