"""PATCH bodies: JSON merge patch, strategic merge patch and JSON patch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from opsbook.sandbox.kube.errors import ApiError

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
SUPPORTED = (MERGE, STRATEGIC, JSON_PATCH)

# List fields whose items strategic merge patch matches by a key (from the Go types' patchMergeKey).
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "ports": ("containerPort", "port"),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey",),
}
# Lists of scalars that strategic merge patch unions instead of replacing.
MERGED_SCALAR_LISTS = ("finalizers",)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Merge semantics plus list merging by the Kubernetes patch merge keys."""
    if not isinstance(patch, dict):
        if isinstance(patch, list) and isinstance(target, list):
            return _merge_lists(target, patch, field)
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value, key)
    return result


def _merge_lists(target: list[Any], patch: list[Any], field: str) -> list[Any]:
    if field in MERGED_SCALAR_LISTS and all(not isinstance(v, dict) for v in patch):
        return [*target, *(v for v in patch if v not in target)]
    keys = MERGE_KEYS.get(field, ())
    dict_items = [p for p in patch if isinstance(p, dict)]
    key = next((k for k in keys if dict_items and all(k in p for p in dict_items)), None)
    if key is None or len(dict_items) != len(patch):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target)
    for item in patch:
        index = next((i for i, t in enumerate(result) if isinstance(t, dict) and t.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            result[index] = strategic_merge_patch(result[index], item, field)
    return result


def apply_patch(target: dict[str, Any], body: Any, content_type: str, strategic: bool = True) -> dict[str, Any]:
    """The patched object; 415 for a patch type the kind does not accept, 422 for a bad patch.

    Custom resources have no Go struct tags to merge by, so (as on a real API server) they
    refuse strategic merge patch: pass `strategic=False` for them.
    """
    media = content_type.split(";")[0].strip()
    if media == STRATEGIC and not strategic:
        accepted = ", ".join((JSON_PATCH, MERGE, APPLY))
        raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                            f"{accepted}")
    if media == JSON_PATCH:
        if not isinstance(body, list):
            raise ApiError(400, "json patch must be a JSON array of operations")
        try:
            return jsonpatch.apply_patch(target, body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ApiError(422, f"the server rejected our request due to an error in our request: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"{media} body must be a JSON object")
    if media == MERGE:
        return merge_patch(target, body)
    if media == STRATEGIC:
        return strategic_merge_patch(target, body)
    raise ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(SUPPORTED)}",
    )
