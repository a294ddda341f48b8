"""The SDK API under /api/v1, compatible with Flagsmith's (CSRF-exempt, key-authenticated)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date, parse_date

from ..clock import utcnow
from ..services import documents, usage
from ..services.errors import DomainError, Forbidden
from ..services.experiments import enrolment
from ..services.experiments.event_buffer import app_buffer
from ..services.experiments.events import EVENTS_BODY_MAX, parse_events
from ..services.sdk import sdk_service, snapshots
from ..services.sdk.parsing import (
    IdentifyInput,
    parse_bulk_traits,
    parse_identifier,
    parse_identify,
    parse_json,
    parse_trait_request,
)
from ..services.usage.ingest import ingest_counts
from .key_api import authenticate_key, json_response, snapshot_cache
from .sdk_openapi import OPENAPI

bp = Blueprint("sdk_api", __name__, url_prefix="/api/v1")

INVALID_KEY = "Invalid or missing Environment Key"


def error(status: int, detail: str) -> Response:
    return json_response({"detail": detail}, status)


@bp.before_request
def authenticate() -> Response | None:
    """Resolve the environment key; 403 for missing, malformed, unknown or revoked keys."""
    if request.endpoint == "sdk_api.openapi":
        return None  # the API description is public
    if not authenticate_key(request.headers.get("X-Environment-Key")):
        return error(403, INVALID_KEY)
    return None


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> Response:
    return error(exc.status, str(exc))


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    return error(exc.code or 500, exc.description or exc.name)


def _body() -> Any:
    return parse_json(request.get_data(cache=False))


@bp.get("/flags/")
def flags() -> Response:
    """Return the environment's default flags, or one with ``?feature=NAME``."""
    is_server = g.key_info.is_server
    results = sdk_service.environment_results(g.bundle)
    items = sdk_service.serialise_flags(g.bundle, results, is_server)
    name = request.args.get("feature")
    if name is None:
        usage.record_served(g.bundle, results, is_server, None, utcnow())
        return json_response(items)
    for item in items:
        if item["feature"]["name"] == name:
            usage.record_served(g.bundle, {name: results[name]}, is_server, None, utcnow())
            return json_response(item)
    return error(404, "Given feature not found")


def _identify_response(payload: IdentifyInput) -> Response:
    is_server = g.key_info.is_server
    result = sdk_service.identify(g.bundle, payload, is_server=is_server, now=utcnow())
    flags = sdk_service.serialise_flags(g.bundle, result.results, is_server)
    if result.evaluation is not None:  # running experiments: metadata.experiment, variant
        enrolment.annotate_flags(g.bundle, result.evaluation, flags)
    # Every flag returned is an evaluation, and what this identity saw.
    usage.record_served(g.bundle, result.results, is_server, result.identity_id, utcnow())
    traits = [{"trait_key": k, "trait_value": v} for k, v in result.traits.items()]
    return json_response({"identifier": result.identifier, "flags": flags, "traits": traits})


@bp.get("/identities/")
def get_identity() -> Response:
    """Identify by query string (creating the identity if new) and return its flags."""
    identifier = parse_identifier(request.args.get("identifier"))
    return _identify_response(IdentifyInput(identifier))


@bp.post("/identities/")
def post_identity() -> Response:
    """Identify with traits: store them (unless transient), evaluate, return flags."""
    return _identify_response(parse_identify(_body()))


def _require_trait_writes() -> None:
    if not (g.key_info.is_server or g.bundle.allow_client_traits):
        raise Forbidden("Setting traits is not allowed with a client-side key here")


@bp.post("/traits/")
def set_trait() -> Response:
    """Store one trait on an identity (created if new), without evaluating."""
    payload = _body()
    identifier, trait = parse_trait_request(payload, "")
    _require_trait_writes()
    sdk_service.set_traits(g.bundle.environment_id, [(identifier, trait)], utcnow())
    return json_response(
        {"identity": {"identifier": identifier}, "trait_key": trait.key, "trait_value": trait.value}
    )


@bp.put("/traits/bulk/")
def set_traits_bulk() -> Response:
    """Store up to 100 traits across identities in one transaction."""
    items = parse_bulk_traits(_body())
    _require_trait_writes()
    sdk_service.set_traits(g.bundle.environment_id, items, utcnow())
    return json_response(
        [
            {"identity": {"identifier": identifier}, "trait_key": t.key, "trait_value": t.value}
            for identifier, t in items
        ]
    )


@bp.post("/v1/events")
def events() -> Response:
    """Accept a batch of SDK events (custom and ``$flag_exposure``); written off this request.

    The official SDK posts to ``{events_api_url}v1/events``: with ``events_api_url`` set to
    this API's URL (``…/api/v1/``) that is this path.
    """
    request.max_content_length = EVENTS_BODY_MAX
    batch = parse_events(_body())
    app_buffer().add(g.bundle.environment_id, batch, utcnow())
    return json_response({"accepted": len(batch)}, 202)


@bp.post("/analytics/flags/")
def analytics_flags() -> Response:
    """Take an SDK's evaluation counts (``{"feature_name": count}``); unknown names are ignored."""
    ingest_counts(g.bundle, g.key_info.is_server, _body(), utcnow())
    return json_response({})


@bp.get("/environment-document/")
def environment_document() -> Response:
    """Serve the document for local evaluation (server-side keys only)."""
    if not g.key_info.is_server:
        return error(403, "The environment document needs a server-side key")
    # Read the revision now, not through the key cache's 0.5 s: an SDK fetches the document
    # right after a stream event, and a stale copy would carry the old updated_at forever.
    bundle = snapshots.bundle_for_environment(g.key_info.environment_id)
    since = parse_date(request.headers.get("If-Modified-Since"))
    # HTTP dates have whole seconds: compare at that resolution.
    modified = bundle.revised_at.replace(microsecond=0)
    if since is not None and modified <= since:
        response = Response(status=304)
    else:
        body = snapshot_cache().document(
            bundle, lambda: orjson.dumps(documents.export_environment(bundle.client_key))
        )
        response = Response(body, mimetype="application/json")
    response.headers["Last-Modified"] = http_date(modified)
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    """Describe these endpoints (OpenAPI 3.1)."""
    return json_response(OPENAPI)
