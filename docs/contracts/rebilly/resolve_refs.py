"""Inline the relative $refs of Rebilly/api-definitions YAML files (how the *.resolved.json
files here were made; x-codeSamples' files are inlined as their text).

    cd docs/contracts/rebilly
    python resolve_refs.py raw/openapi/components/schemas/X.yaml > X.resolved.json
"""

import json
import sys
from pathlib import Path

import yaml


def resolve(path: Path):
    if path.suffix not in (".yaml", ".yml"):
        return path.read_text()
    return _walk(yaml.safe_load(path.read_text()), path.parent)


def _walk(node, base: Path):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            target = resolve((base / ref).resolve())
            rest = {key: _walk(value, base) for key, value in node.items() if key != "$ref"}
            return {**target, **rest} if rest else target
        return {key: _walk(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(value, base) for value in node]
    return node


if __name__ == "__main__":
    print(json.dumps(resolve(Path(sys.argv[1])), indent=2, ensure_ascii=False))
