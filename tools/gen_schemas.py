"""Write schemas/*.json and schemas/asyncapi.json from tidstream.schema (run by hand or
`make schemas`; tests/test_schemas.py fails when the committed files are stale)."""

from __future__ import annotations

import json
from pathlib import Path

from tidstream.subjects_doc import alert_schema, asyncapi, dead_letter_schema, reading_schema, twin_schema

OUT = Path(__file__).resolve().parent.parent / "schemas"


def render() -> dict[str, str]:
    """File name -> content."""
    docs = {
        "reading.schema.json": reading_schema(),
        "dead-letter.schema.json": dead_letter_schema(),
        "alert.schema.json": alert_schema(),
        "twin.schema.json": twin_schema(),
        "asyncapi.json": asyncapi(),
    }
    return {k: json.dumps(v, indent=2, ensure_ascii=False) + "\n" for k, v in docs.items()}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
