"""Export the contract's JSON Schemas to proto/schema/: `python -m proto.schema [--check]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from proto import models

SCHEMA_DIR = Path(__file__).with_name("schema")
EXPORTED = (
    models.ScoreRequest, models.ScoreItem, models.ImageData, models.ScoreResponse,
    models.ItemDetail, models.ErrorResponse, models.ServiceInfo,
)


def rendered() -> dict[str, str]:
    """File name -> JSON text of each model's schema, as it would be written."""
    return {
        f"{model.__name__}.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for model in EXPORTED
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    args = parser.parse_args(argv)
    stale = [name for name, text in rendered().items()
             if not (SCHEMA_DIR / name).exists() or (SCHEMA_DIR / name).read_text() != text]
    if args.check:
        if stale:
            print(f"stale schema files: {stale}; run `python -m proto.schema`", file=sys.stderr)
        return 1 if stale else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (SCHEMA_DIR / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
