"""The served OpenAPI of create_app: 401s declared exactly where the bearer token is required."""

from starlette.testclient import TestClient

from services.common.auth import OPEN_PATHS
from tests.services.common.toy import make_app

TOKEN = "a-real-secret-for-tests"


def _spec(**settings) -> dict:
    with TestClient(make_app(**settings)) as client:
        return client.get("/openapi.json", headers={"authorization": f"Bearer {TOKEN}"}).json()


def test_with_a_token_every_closed_route_declares_401_and_the_probes_do_not():
    spec = _spec(auth_token=TOKEN)
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            declared = "401" in operation["responses"]
            assert declared == (path not in OPEN_PATHS), path
            if declared:
                schema = operation["responses"]["401"]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorResponse")


def test_without_a_token_no_route_declares_401():
    spec = _spec()
    assert all("401" not in op["responses"] for ops in spec["paths"].values() for op in ops.values())


def test_the_typed_body_documents_the_params_model_and_leaves_the_wire_model_alone():
    spec = _spec()
    body = spec["components"]["schemas"]["ScoreRequest_ToyParams"]
    assert body["properties"]["params"]["$ref"] == "#/components/schemas/ToyParams"
    toy = spec["components"]["schemas"]["ToyParams"]["properties"]["scale"]
    assert toy["type"] == "number"
    # proto's ScoreRequest (what proto/schema is generated from) keeps params a free object.
    from proto.models import ScoreRequest

    assert ScoreRequest.model_json_schema()["properties"]["params"]["type"] == "object"
