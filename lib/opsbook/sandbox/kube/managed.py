"""metadata.managedFields, and server-side apply (PATCH with `application/apply-patch+yaml`).

Follows k8s.io/apimachinery pkg/util/managedfields (internal/fieldmanager.go,
internal/structuredmerge.go, internal/conflict.go) and k8s.io/apiserver
pkg/endpoints/handlers/patch.go, simplified to what clients can observe:

- every write records who set which fields: an `Update` entry per manager (the fieldManager
  parameter, else the User-Agent's product name) holding the fields it changed, taken from
  the other managers; server-side apply keeps an `Apply` entry holding exactly the applied set;
- an apply merges the applied configuration into the live object (maps and map-lists by key,
  the rest replaced), removes what this manager applied before and no manager holds now, and
  refuses (409, FieldManagerConflict causes) to change a field another manager holds with a
  different value unless `force=true`, which takes the field from it;
- an apply that changes nothing writes nothing: applying the same configuration twice is a no-op;
- managedFields sent by a client replace the tracked ones (`[{}]` clears them); none, or an
  empty list, keeps them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from opsbook.sandbox.kube import fields
from opsbook.sandbox.kube.errors import ApiError
from opsbook.sandbox.kube.fields import Path, Schema

APPLY, UPDATE = "Apply", "Update"
MAX_MANAGER_LENGTH = 128


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def manager_from_user_agent(user_agent: str | None) -> str:
    """fieldmanager's default manager: the User-Agent up to its first '/' (kubectl, OpenAPI-Generator)."""
    return (user_agent or "unknown").split("/", 1)[0][:MAX_MANAGER_LENGTH] or "unknown"


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[Path]
    subresource: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.manager, self.operation, self.subresource

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
                               "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": fields.encode(self.paths)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def decode_entries(raw: Any) -> list[Entry] | None:
    """Entries of a managedFields value, or None when it is not a valid one."""
    if not isinstance(raw, list):
        return None
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("manager"), str) or \
                item.get("operation") not in (APPLY, UPDATE):
            return None
        out.append(Entry(item["manager"], item["operation"], item.get("apiVersion", ""), item.get("time", ""),
                         fields.decode(item.get("fieldsV1") or {}), item.get("subresource", "")))
    return out


def base_entries(old: dict[str, Any] | None, new: dict[str, Any]) -> list[Entry]:
    """The entries a write starts from: the client's when it sent different valid ones, else the stored."""
    stored = decode_entries(((old or {}).get("metadata") or {}).get("managedFields")) or []
    sent = new["metadata"].get("managedFields")
    if sent in (None, []):
        return stored
    if sent == [{}]:
        return []
    decoded = decode_entries(sent)
    return stored if decoded is None else decoded


def _changed_paths(old: dict[str, Any] | None, new: dict[str, Any], schema: Schema, status: bool) -> set[Path]:
    new_paths = fields.field_set(new, schema, status)
    if old is None:
        return new_paths
    return {p for p in new_paths if fields.value_at(old, p) != fields.value_at(new, p)}


def _store(entries: list[Entry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in entries if e.paths]


def record_update(old: dict[str, Any] | None, new: dict[str, Any], schema: Schema, manager: str, api_version: str,
                  subresource: str = "") -> None:
    """Set new's managedFields for a create, update or non-apply patch by `manager`."""
    entries = base_entries(old, new)
    status = subresource == "status"
    changed = _changed_paths(old, new, schema, status)
    present = fields.field_set(new, schema, True)
    for entry in entries:
        entry.paths = {p for p in entry.paths - changed if p in present}
    if changed:
        mine = next((e for e in entries if e.key == (manager, UPDATE, subresource)), None)
        if mine is None:
            entries.append(Entry(manager, UPDATE, api_version, now(), set(changed), subresource))
        else:
            mine.paths |= changed
            mine.time = now()
    new["metadata"]["managedFields"] = _store(entries)
    if not new["metadata"]["managedFields"]:
        new["metadata"].pop("managedFields")


# --- server-side apply ---------------------------------------------------------------------------


def _field_name(path: Path) -> str:
    """fieldpath.Path.String(): `.spec.replicas`, `.spec.containers[name="web"].image`, `.metadata.finalizers[="x"]`."""
    out = ""
    for kind, text in path:
        if kind == "f":
            out += f".{text}"
        elif kind == "k":
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(text).items()) + "]"
        else:
            out += f"[={text}]"
    return out


def _manager_text(entry: Entry) -> str:
    """conflict.go printManager: the quoted name, its subresource, and for Update the API version and time."""
    text = f'"{entry.manager}"' + (f' with subresource "{entry.subresource}"' if entry.subresource else "")
    return f"{text} using {entry.api_version} at {entry.time}" if entry.operation == UPDATE else text


def _conflict_error(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    """conflict.go NewConflictError: a 409 Conflict whose causes name each field and its manager."""
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {_manager_text(e)}",
               "field": _field_name(p)} for e, p in conflicts]
    if len(conflicts) == 1:
        message = f"Apply failed with 1 conflict: {causes[0]['message']}: {causes[0]['field']}"
    else:
        lines = []
        for manager in sorted({_manager_text(e) for e, _ in conflicts}):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {_field_name(p)}" for e, p in conflicts if _manager_text(e) == manager]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, message, causes=causes)


def check_apply_options(manager: str | None, force: str | None, apply: bool) -> bool:
    """pkg/apis/meta/v1/validation ValidatePatchOptions: fieldManager required for apply, force only there."""
    if apply and not manager:
        raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
                            "for apply patch", causes=[{"reason": "FieldValueRequired", "field": "fieldManager",
                                                        "message": "Required value: is required for apply patch"}])
    if force not in (None, "", "false") and not apply:
        raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for '
                            "non-apply patch")
    if manager and len(manager) > MAX_MANAGER_LENGTH:
        raise ApiError(422, f'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more '
                            f"than {MAX_MANAGER_LENGTH} bytes")
    return force in ("true", "1")


def apply(live: dict[str, Any] | None, applied: dict[str, Any], schema: Schema, manager: str, force: bool,
          api_version: str, status: bool = False) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: the apply creates it)."""
    applied_paths = fields.field_set(applied, schema, status)
    base = copy.deepcopy(live) if live is not None else {"metadata": {}}
    entries = base_entries(live, base) if live is not None else []
    others = [e for e in entries if e.key != (manager, APPLY, "")]
    mine = next((e for e in entries if e.key == (manager, APPLY, "")), None)
    conflicts = [(e, p) for e in others for p in sorted(applied_paths & e.paths)
                 if fields.value_at(base, p) != fields.value_at(applied, p)]
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry, path in conflicts:
        entry.paths.discard(path)
    merged = fields.merge(base, applied, schema)
    held = set().union(*(e.paths for e in others)) if others else set()
    for path in sorted((mine.paths if mine else set()) - applied_paths - held, key=len, reverse=True):
        fields.remove_path(merged, path)
        fields.prune_empty(merged, path)
    if mine is None:
        mine = Entry(manager, APPLY, api_version, now(), set())
        entries.append(mine)
    if mine.paths != applied_paths:
        mine.paths, mine.time, mine.api_version = applied_paths, now(), api_version
    merged["metadata"]["managedFields"] = _store(entries)
    return merged
