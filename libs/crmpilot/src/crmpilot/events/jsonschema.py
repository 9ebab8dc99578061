"""JSON Schema of every event type and version, and of the enrichment spec file, generated from the models.

``schemas/`` in the repository holds the generated files; ``crmpilot schemas
check`` (and a unit test) fails when a checked-in file drifts from the models,
so a contract never changes without a reviewed diff.
"""

from __future__ import annotations

import json
from pathlib import Path

from .envelope import Envelope
from .registry import EVENT_TYPES

__all__ = ["generate", "write", "check"]


def generate() -> dict[str, str]:
    """Relative file name → schema text, for every registered type and version."""
    out: dict[str, str] = {"enrichment.schema.json": _enrichment_spec_schema()}
    for event_type, versions in sorted(EVENT_TYPES.items()):
        for version, model in sorted(versions.items()):
            schema = Envelope[model].model_json_schema()  # type: ignore[valid-type]  # the payload model is only known at run time
            schema["$id"] = f"https://crmpilot.dev/schemas/{event_type}/v{version}.schema.json"
            schema["title"] = f"{event_type} v{version}"
            schema["properties"]["type"]["const"] = event_type
            schema["properties"]["schemaversion"]["const"] = version
            schema["required"] = sorted({*schema.get("required", ()), "id", "time", "type", "schemaversion"})
            out[f"{event_type}/v{version}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def _enrichment_spec_schema() -> str:
    """The JSON Schema of an enrichment spec file (editor completion: ``# yaml-language-server: $schema=...``)."""
    from crmpilot.enrichments.spec import EnrichmentSpec  # the spec is not an event: imported only here

    schema = EnrichmentSpec.model_json_schema()
    schema["$id"] = "https://crmpilot.dev/schemas/enrichment.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(root: Path) -> list[str]:
    """Write every schema under ``root``; returns the files that changed."""
    changed = []
    for name, text in generate().items():
        path = root / name
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(name)
    return changed


def check(root: Path) -> list[str]:
    """Files under ``root`` that are missing or differ from the models."""
    expected = generate()
    problems = [
        name for name, text in expected.items() if not (root / name).exists() or (root / name).read_text() != text
    ]
    extra = sorted(
        str(p.relative_to(root)) for p in root.rglob("*.schema.json") if str(p.relative_to(root)) not in expected
    )
    return problems + [f"{name} (no model)" for name in extra]
