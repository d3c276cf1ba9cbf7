"""The external contracts Storno implements, read from docs/contracts/.

docs/contracts/ holds copies of the five seeds and of the parts of the real public specs Storno
uses (JSON Schema for JS7, OpenAPI 3.1 for Rebilly and AEB). The fakes check what they are sent
against these files and the contract tests check every body the adapters build, so a field the
real service doesn't define can't slip through because a fake and an adapter agreed on it.

    schema_errors(body, schema("js7/cancelOrders.resolved.json"))
    schema_errors(body, openapi_schema("billing/aeb-….json", "BReverseServiceItemsRequestDTO"))
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "docs" / "contracts"


@functools.cache
def load(relative_path: str) -> dict:
    """A JSON file under docs/contracts/, parsed once per process."""
    return json.loads((CONTRACTS_DIR / relative_path).read_text(encoding="utf-8"))


def schema(relative_path: str) -> dict:
    """A JSON Schema file as it is (the .resolved.json files have their $refs inlined)."""
    return load(relative_path)


def openapi_schema(relative_path: str, name: str) -> dict:
    """components/schemas/<name> of an OpenAPI 3.1 document, with the document's other
    components reachable for its local "#/components/…" references."""
    document = load(relative_path)
    return {**document["components"]["schemas"][name], "components": document["components"]}


def schema_errors(instance, json_schema: dict) -> list[str]:
    """Every way `instance` breaks `json_schema`, as "path: message", path in dot notation
    (Rebilly's invalidFields style); an empty list when it conforms. Formats are checked."""
    cls = validator_for(json_schema, default=Draft202012Validator)
    validator = cls(json_schema, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.absolute_path))
    return [f"{dotted(error.absolute_path) or '(body)'}: {error.message}" for error in errors]


def dotted(path) -> str:
    return ".".join(str(part) for part in path)
