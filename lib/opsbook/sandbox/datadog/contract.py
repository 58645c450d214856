"""Check a response against Datadog's public v1 OpenAPI spec (vendored in opsbook.contracts, datadog/).

For a (method, path, status, content type, body) the checker finds the operation, the
documented status and media type, and validates the body with the OpenAPI 3.0 dialect
of JSON Schema (`openapi-schema-validator`, read context: `readOnly` fields allowed).
The spec is parsed once per process (about a second with libyaml).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from opsbook.contracts import contract_path

SPEC_URI = "urn:datadog:openapi-v1"


def spec_path() -> Path:
    return contract_path("datadog", "openapi-v1.yaml")


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class Contract:
    spec: dict
    registry: Registry
    routes: list[tuple[re.Pattern[str], str]]

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        for pattern, template in self.routes:
            if pattern.fullmatch(path):
                operation = self.spec["paths"][template].get(method.lower())
                if operation is not None:
                    return template, operation
        return None

    def problems(self, method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
        """What in this response the spec does not allow ([] when it conforms)."""
        where = f"{method} {path} -> {status}"
        found = self.operation(method, path)
        if found is None:
            return [f"{where}: no such operation in the spec"]
        template, operation = found
        responses = operation["responses"]
        key = str(status) if str(status) in responses else "default" if "default" in responses else None
        if key is None:
            # The spec does not list every auth error an operation can give (POST /events has
            # no 403); such an answer must still be the API's error shape.
            if 400 <= status < 500:
                return self._validate(where, body, _pointer("components", "schemas", "APIErrorResponse"))
            return [f"{where}: status {status} is not documented (documented: {', '.join(responses)})"]
        response = responses[key]
        base = ("paths", template, method.lower(), "responses", key)
        if "$ref" in response:
            base = tuple(response["$ref"].lstrip("#/").split("/"))
            response = self._resolve(response["$ref"])
        content = response.get("content") or {}
        if not content:
            return [] if not body.strip() else [f"{where}: the spec documents no body, got {body[:80]!r}"]
        media = _media_type(content_type, content)
        if media is None:
            return [f"{where}: content type {content_type!r} is not documented ({', '.join(content)})"]
        if "schema" not in content[media]:
            return []
        return self._validate(where, body, _pointer(*base, "content", media, "schema"))

    def _resolve(self, ref: str) -> dict:
        node = self.spec
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _validate(self, where: str, body: bytes, pointer: str) -> list[str]:
        try:
            document = json.loads(body)
        except ValueError:
            return [f"{where}: the body is not JSON: {body[:80]!r}"]
        validator = OAS30ReadValidator(
            {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry, format_checker=oas30_format_checker
        )
        return [
            f"{where}: {'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
            for error in validator.iter_errors(document)
        ]


def _media_type(content_type: str, content: dict) -> str | None:
    given = content_type.replace(" ", "").lower()
    for media in content:
        if media.replace(" ", "").lower() == given:
            return media
    bare = given.split(";")[0]
    return bare if bare in content else None


@cache
def load_contract(path: str | None = None) -> Contract:
    """The parsed spec (once per process) with its routes and a $ref registry."""
    source = Path(path) if path else spec_path()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(source.read_text(), Loader=loader)  # noqa: S506 - a safe loader
    resource = Resource.from_contents(spec, default_specification=DRAFT4)
    registry = Registry().with_resource(SPEC_URI, resource)
    routes = []
    # literal paths first, so /monitor/validate wins over /monitor/{monitor_id}
    for template in sorted(spec["paths"], key=lambda t: (t.count("{"), t)):
        pattern = re.escape(template)
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        routes.append((re.compile(pattern), template))
    return Contract(spec=spec, registry=registry, routes=routes)


class ResponseLog:
    """An emulator observer that keeps every response, to check against the spec later."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, int, str, bytes]] = []

    def __call__(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        self.responses.append((method, path, status, content_type, body))

    def problems(self, contract: Contract, since: int = 0) -> list[str]:
        return [p for response in self.responses[since:] for p in contract.problems(*response)]
