"""The OpenAPI 3.1 description of the SDK API, served at /api/v1/openapi.json."""

from typing import Any

from ..services import values
from ..services.experiments.events import EVENT_NAME_MAX, EVENT_VALUE_MAX, MAX_EVENTS
from ..services.usage import ingest

_KEY = [{"EnvironmentKey": []}]
_ERROR = {"$ref": "#/components/schemas/Error"}


def _responses(ok: dict[str, Any], *extra: int) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    descriptions = {
        304: "Not modified since If-Modified-Since",
        400: "Invalid input (also: a NUL character anywhere in the address)",
        403: "Invalid or missing Environment Key",
        404: "Not found",
        413: "Body larger than 64 KiB",
    }
    for status in sorted({400, 403, *extra}):
        if status == 304:
            responses["304"] = {"description": descriptions[304]}
            continue
        responses[str(status)] = {
            "description": descriptions[status],
            "content": {"application/json": {"schema": _ERROR}},
        }
    return responses


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Limits from the one typed value model, so the document says what the API enforces.
TRAIT_VALUE = {
    "type": ["string", "integer", "number", "boolean", "null"],
    "maxLength": values.TRAIT_STRING_MAX,
}
TRAIT_KEY = {"type": "string", "minLength": 1, "maxLength": values.TRAIT_KEY_MAX}
IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": values.IDENTIFIER_MAX}
IDENTITY_REF = {
    "type": "object",
    "required": ["identifier"],
    "properties": {"identifier": IDENTIFIER},
}
TRAIT_WRITE = {
    "type": "object",
    "required": ["identity", "trait_key"],
    "properties": {"identity": IDENTITY_REF, "trait_key": TRAIT_KEY, "trait_value": TRAIT_VALUE},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}},
    },
    "Feature": {
        "type": "object",
        "required": ["id", "name", "type"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["STANDARD", "MULTIVARIATE"]},
            "description": {"type": ["string", "null"]},
            "created_date": {"type": "string"},
        },
    },
    "Flag": {
        "type": "object",
        "required": ["id", "feature", "enabled", "feature_state_value"],
        "properties": {
            "id": {"type": "integer"},
            "feature": {"$ref": "#/components/schemas/Feature"},
            "enabled": {"type": "boolean"},
            "feature_state_value": {"type": ["string", "integer", "number", "boolean", "null"]},
            "environment": {"type": "integer"},
            "identity": {"type": "null"},
            "feature_segment": {"type": "null"},
            "variant": {
                "type": "string",
                "description": "Identity flags of multivariate features: the option key the "
                "identity got, or \"control\" for the feature's own value",
            },
            "reason": {"type": "string"},
            # Identity flags of a feature with a running experiment (the SDK reads it).
            "metadata": {
                "type": "object",
                "properties": {
                    "experiment": {
                        "type": "object",
                        "required": ["id", "name", "in_experiment"],
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "in_experiment": {"type": "boolean"},
                        },
                    }
                },
            },
        },
    },
    "Trait": {
        "type": "object",
        "required": ["trait_key", "trait_value"],
        "properties": {"trait_key": {"type": "string"}, "trait_value": TRAIT_VALUE},
    },
    "IdentityResponse": {
        "type": "object",
        "required": ["identifier", "flags", "traits"],
        "properties": {
            "identifier": {"type": "string"},
            "flags": {"type": "array", "items": {"$ref": "#/components/schemas/Flag"}},
            "traits": {"type": "array", "items": {"$ref": "#/components/schemas/Trait"}},
        },
    },
    "IdentifyRequest": {
        "type": "object",
        "required": ["identifier"],
        "properties": {
            "identifier": IDENTIFIER,
            "transient": {"type": "boolean"},
            "traits": {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "required": ["trait_key"],
                    "properties": {
                        "trait_key": TRAIT_KEY,
                        "trait_value": TRAIT_VALUE,
                        "transient": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "TraitWrite": TRAIT_WRITE,
    "EventBatch": {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "maxItems": MAX_EVENTS,
                "items": {
                    "type": "object",
                    "required": ["event"],
                    "properties": {
                        "event": {"type": "string", "minLength": 1, "maxLength": EVENT_NAME_MAX},
                        "identifier": {"oneOf": [IDENTIFIER, {"type": "null"}]},
                        "feature_name": {
                            "type": ["string", "null"], "minLength": 1, "maxLength": 150
                        },
                        "value": {
                            "type": ["string", "integer", "number", "boolean", "null"],
                            "maxLength": EVENT_VALUE_MAX,
                        },
                        "traits": {"type": ["object", "null"]},
                        "metadata": {
                            "type": ["object", "null"],
                            "properties": {"experiment_id": {"type": ["integer", "null"]}},
                        },
                        "timestamp": {"type": ["integer", "null"]},
                    },
                },
            }
        },
    },
}

_OFREP_SECURITY = [{"EnvironmentKey": []}, {"BearerAuth": []}]
_OFREP_GENERAL = {"type": "object", "properties": {"errorDetails": {"type": "string"}}}
_OFREP_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"context": {"type": "object"}}}
        }
    },
}
_ERROR_CODES = [
    "PARSE_ERROR",
    "TARGETING_KEY_MISSING",
    "INVALID_CONTEXT",
    "GENERAL",
    "FLAG_NOT_FOUND",
]
OFREP_SCHEMAS: dict[str, Any] = {
    "ofrepSuccess": {
        "type": "object",
        "required": ["key", "value", "reason"],
        "properties": {
            "key": {"type": "string"},
            "value": {"type": ["boolean", "string", "integer", "number", "object"]},
            "reason": {
                "type": "string",
                "enum": ["STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT", "DISABLED", "UNKNOWN"],
            },
            "variant": {"type": "string"},
            "metadata": {
                "type": "object",
                "additionalProperties": {"type": ["boolean", "string", "number"]},
            },
            "cacheable": {"type": "boolean"},
        },
    },
    "ofrepFailure": {
        "type": "object",
        "required": ["key", "errorCode"],
        "properties": {
            "key": {"type": "string"},
            "errorCode": {"enum": _ERROR_CODES},
            "errorDetails": {"type": "string"},
        },
    },
    "ofrepBulkFailure": {
        "type": "object",
        "required": ["errorCode"],
        "properties": {"errorCode": {"enum": _ERROR_CODES}, "errorDetails": {"type": "string"}},
    },
}

_OFREP_BULK = {
    "type": "object",
    "required": ["flags"],
    "properties": {
        "flags": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"$ref": "#/components/schemas/ofrepSuccess"},
                    {"$ref": "#/components/schemas/ofrepFailure"},
                ]
            },
        }
    },
}

FLAG = {"$ref": "#/components/schemas/Flag"}
IDENTITY_RESPONSE = {"$ref": "#/components/schemas/IdentityResponse"}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Flagpost SDK API",
        "version": "1.0.0",
        "description": "Flagsmith-compatible endpoints for SDKs, authenticated by the "
        "X-Environment-Key header (client-side key, or a server-side `ser.` key).",
    },
    "servers": [{"url": "/"}],
    "security": _KEY,
    "components": {
        "securitySchemes": {
            "EnvironmentKey": {"type": "apiKey", "in": "header", "name": "X-Environment-Key"},
            "BearerAuth": {"type": "http", "scheme": "bearer"},
        },
        "schemas": {**SCHEMAS, **OFREP_SCHEMAS},
    },
    "paths": {
        "/api/v1/flags/": {
            "get": {
                "summary": "Environment default flags (one with ?feature=NAME)",
                "parameters": [
                    {
                        "name": "feature",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": _responses(
                    _json({"oneOf": [{"type": "array", "items": FLAG}, FLAG]}), 404
                ),
            }
        },
        "/api/v1/identities/": {
            "get": {
                "summary": "Identify (creating the identity if new) and evaluate its flags",
                "parameters": [
                    {"name": "identifier", "in": "query", "required": True, "schema": IDENTIFIER}
                ],
                "responses": _responses(_json(IDENTITY_RESPONSE), 400),
            },
            "post": {
                "summary": "Identify with traits (null deletes, transient is not stored)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/IdentifyRequest"}
                        }
                    },
                },
                "responses": _responses(_json(IDENTITY_RESPONSE), 400, 413),
            },
        },
        "/api/v1/traits/": {
            "post": {
                "summary": "Set one trait on an identity without evaluating",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/TraitWrite"}}
                    },
                },
                "responses": _responses(
                    _json({"$ref": "#/components/schemas/TraitWrite"}), 400, 413
                ),
            }
        },
        "/api/v1/traits/bulk/": {
            "put": {
                "summary": "Set up to 100 traits across identities",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {"$ref": "#/components/schemas/TraitWrite"},
                            }
                        }
                    },
                },
                "responses": _responses(
                    _json({"type": "array", "items": {"$ref": "#/components/schemas/TraitWrite"}}),
                    400,
                    413,
                ),
            }
        },
        "/api/v1/analytics/flags/": {
            "post": {
                "summary": "Report SDK flag evaluations (counts per feature name; unknown names "
                "are ignored)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "maxProperties": ingest.MAX_FEATURES,
                                "propertyNames": {
                                    "minLength": 1,
                                    "maxLength": ingest.FEATURE_NAME_MAX,
                                },
                                "additionalProperties": {
                                    "type": "integer",
                                    "minimum": 0,
                                    "maximum": ingest.MAX_COUNT,
                                },
                            }
                        }
                    },
                },
                "responses": _responses(_json({"type": "object"}), 400, 413),
            }
        },
        "/api/v1/environment-document/": {
            "get": {
                "summary": "Environment document for local evaluation (server-side keys only)",
                "parameters": [
                    {
                        "name": "If-Modified-Since",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": _responses(_json({"type": "object"}), 304),
            }
        },
        "/api/v1/v1/events": {
            "post": {
                "summary": "SDK events batch (custom events and $flag_exposure); the official "
                "SDK's events_api_url set to this API's URL reaches it. Events for unknown "
                "identities, features or experiments are accepted and ignored.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}
                    },
                },
                "responses": {
                    "202": _json(
                        {"type": "object", "properties": {"accepted": {"type": "integer"}}},
                        "Queued for writing",
                    ),
                    **{
                        str(code): _json(_ERROR, text)
                        for code, text in (
                            (400, "Invalid batch (the detail names the field)"),
                            (403, "Invalid or missing Environment Key"),
                            (413, "Body larger than 1 MiB"),
                            (503, "Too many events waiting to be written; send again later"),
                        )
                    },
                },
            }
        },
        "/ofrep/v1/evaluate/flags/{key}": {
            "post": {
                "summary": "OFREP: evaluate one flag (context.targetingKey is the identifier)",
                "security": _OFREP_SECURITY,
                "parameters": [
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
                "requestBody": _OFREP_BODY,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/ofrepSuccess"}),
                    "400": _json({"$ref": "#/components/schemas/ofrepFailure"}, "Bad request"),
                    "401": _json(_OFREP_GENERAL, "Missing key"),
                    "403": _json(_OFREP_GENERAL, "Invalid key"),
                    "404": _json({"$ref": "#/components/schemas/ofrepFailure"}, "Not found"),
                    "413": _json(_OFREP_GENERAL, "Body larger than 64 KiB"),
                },
            }
        },
        "/ofrep/v1/evaluate/flags": {
            "post": {
                "summary": "OFREP: evaluate every flag; ETag / If-None-Match supported",
                "security": _OFREP_SECURITY,
                "parameters": [
                    {
                        "name": "If-None-Match",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": _OFREP_BODY,
                "responses": {
                    "200": _json(_OFREP_BULK),
                    "304": {"description": "Not modified"},
                    "400": _json({"$ref": "#/components/schemas/ofrepBulkFailure"}, "Bad request"),
                    "401": _json(_OFREP_GENERAL, "Missing key"),
                    "403": _json(_OFREP_GENERAL, "Invalid key"),
                    "413": _json(_OFREP_GENERAL, "Body larger than 64 KiB"),
                },
            }
        },
    },
}
