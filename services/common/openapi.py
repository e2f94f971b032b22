"""The served OpenAPI as the contract: typed request body, every error response, text metrics."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, create_model

from proto.models import ErrorResponse, ScoreRequest, ScoreResponse, ServiceInfo
from services.common.auth import OPEN_PATHS


class ProbeStatus(BaseModel):
    status: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {
        401: "Missing or wrong bearer token.",
        413: "Body over max_body_bytes, or more items / JSON values than max_batch allows.",
        422: "The body or its params do not validate; the message names the field.",
        500: "A bug; quote the request id.",
        502: "The scorer's upstream (the judge API) failed for the whole request.",
        503: "Not ready (loading, draining, credentials refused) or at capacity; see Retry-After.",
    }
    return {code: {"model": ErrorResponse, "description": what[code]} for code in codes}


ROUTE_DOCS: dict[str, dict[str, Any]] = {
    "score": {
        "response_model": ScoreResponse,
        "summary": "Score a batch: one reward per item, in order",
        "responses": _errors(413, 422, 500, 502, 503),
    },
    "info": {"response_model": ServiceInfo, "summary": "Name, version, limits, params schema, config"},
    "healthz": {"response_model": ProbeStatus, "summary": "Liveness: the process answers"},
    "readyz": {
        "summary": "Readiness: 503 while loading, draining or refused by an upstream",
        "responses": {200: {"model": ProbeStatus, "description": "Ready to score."}, **_errors(503)},
    },
    "metrics": {
        "response_class": PlainTextResponse,
        "summary": "Prometheus metrics, text exposition format",
    },
}

def request_model(params_model: type[BaseModel]) -> type[ScoreRequest]:
    """ScoreRequest with `params` typed as this service's params model, for the documentation only.

    The wire model stays `ScoreRequest` (params a free dict, validated by the service), so
    proto/schema and every service share one request type.
    """
    return create_model(
        f"ScoreRequest_{params_model.__name__}", __base__=ScoreRequest,
        params=(params_model, Field(default_factory=dict, description="Options of this service.")),
    )


def install_openapi(app: FastAPI, params_model: type[BaseModel], *, auth: bool) -> None:
    """Serve an OpenAPI whose POST /v1/score declares its body, and 401s where a token is needed."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            _declare_body(schema, request_model(params_model))
            if auth:
                _declare_auth(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _declare_body(schema: dict[str, Any], model: type[BaseModel]) -> None:
    body = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    components[model.__name__] = body
    schema["paths"]["/v1/score"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }


def _declare_auth(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, operations in schema["paths"].items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
            operation["responses"]["401"] = {
                "description": "Missing or wrong bearer token.",
                "content": {"application/json": {"schema": error_ref}},
            }
