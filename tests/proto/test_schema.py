"""The exported JSON Schemas are exactly what the models say: no drift between code and files."""

import json

from proto import schema
from proto.models import ScoreRequest


def test_schema_files_match_models():
    for name, text in schema.rendered().items():
        on_disk = (schema.SCHEMA_DIR / name).read_text()
        assert on_disk == text, f"{name} is stale: run `python -m proto.schema`"


def test_check_mode_detects_drift(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "SCHEMA_DIR", tmp_path)
    assert schema.main(["--check"]) == 1
    assert schema.main([]) == 0
    assert schema.main(["--check"]) == 0
    (tmp_path / "ScoreRequest.json").write_text("{}")
    assert schema.main(["--check"]) == 1


def test_request_schema_forbids_unknown_fields():
    doc = json.loads((schema.SCHEMA_DIR / "ScoreRequest.json").read_text())
    assert doc["additionalProperties"] is False
    assert ScoreRequest.model_json_schema()["properties"]["items"]["minItems"] == 1
