"""The API server's verbs over the store: create, get, list, update, patch, delete, watch.

HTTP-free: `server.py` maps requests onto these calls, errors are `ApiError`s that
become `Status` answers.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opsbook.sandbox.kube import controllers, crds, kinds, metrics, schema
from opsbook.sandbox.kube.errors import ApiError, already_exists, conflict, invalid, not_found
from opsbook.sandbox.kube.patching import apply_patch
from opsbook.sandbox.kube.resources import Registry, ResourceType
from opsbook.sandbox.kube.selectors import field_matcher, label_matcher
from opsbook.sandbox.kube.store import Store

CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
NAMESPACES_KEY = "/namespaces"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# How long a deleted namespace stays Terminating while its content is removed.
NAMESPACE_FINALIZE_SECONDS = 0.5
DEFAULT_WATCH_SECONDS = 1800


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Call:
    """Per-request options: dryRun, fieldValidation, and warnings to send back."""

    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)


def _strip(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _assign_name(rtype: ResourceType, meta: dict[str, Any]) -> None:
    """The object's name: given, or generateName plus five random characters; checked for its kind."""
    if not meta.get("name") and meta.get("generateName"):
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        meta["name"] = meta["generateName"] + "".join(secrets.choice(alphabet) for _ in range(5))
    if not meta.get("name"):
        cause = {"reason": "FieldValueRequired", "message": "Required value: name or generateName is required",
                 "field": "metadata.name"}
        raise invalid(rtype.group_kind, "", rtype.group, rtype.kind, [cause])
    if causes := kinds.name_causes(rtype.kind, meta["name"]):
        raise invalid(rtype.group_kind, meta["name"], rtype.group, rtype.kind, causes)


def _status_change(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Through the status subresource only status changes: the old object with the new status."""
    status = new.get("status")
    changed = copy.deepcopy(old)
    changed["status"] = status
    if status is None:
        changed.pop("status")
    return changed


IMMUTABLE_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                      "namespace")


def _keep_server_fields(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A write to the main endpoint keeps the server's metadata, and the status when it has a subresource."""
    if rtype.status_subresource:
        # The main endpoint ignores status when the kind has a status subresource.
        new.pop("status", None)
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
    for immutable in IMMUTABLE_METADATA:
        if immutable in old["metadata"]:
            new["metadata"][immutable] = old["metadata"][immutable]
        else:
            new["metadata"].pop(immutable, None)


class Api:
    """The emulated API server's state and verbs."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.store = Store()
        self.server_address = "127.0.0.1"  # host:port, set by the HTTP server (/api reports it)
        self._write = threading.RLock()  # one writer at a time: checks and writes stay consistent
        self._timers: list[threading.Timer] = []
        ns_type = self.resource("", "v1", "namespaces")
        for name in SYSTEM_NAMESPACES:
            self.create(ns_type, None, {"metadata": {"name": name}})
        crd_type = self.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for crd in crds.bundled_crds():
            self.create(crd_type, None, crd)

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self.store.close()

    # --- lookup ------------------------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self.registry.get(group, version, plural)
        if rtype is None:
            gv = f"{group}/{version}" if group else version
            raise ApiError(404, f"the server could not find the requested resource ({plural} in {gv})")
        return rtype

    def _need_verb(self, rtype: ResourceType, verb: str) -> None:
        if verb not in rtype.verbs:
            raise ApiError(405, f"{verb} is not supported on resources of kind {rtype.group_resource!r}",
                           kind=rtype.plural, group=rtype.group)

    def _existing(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.key, namespace, name)
        if obj is None:
            raise not_found(rtype.group_resource, name, rtype.group, rtype.plural)
        return obj

    def _check_namespace(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACES_KEY, "", namespace)
        if ns is None:
            raise not_found("namespaces", namespace, "", "namespaces")
        if (ns.get("status") or {}).get("phase") == "Terminating":
            raise ApiError(
                403,
                f"unable to create new content in namespace {namespace} because it is being terminated",
                name=namespace, kind="namespaces",
            )

    # --- shaping objects -----------------------------------------------------------------

    def _typed(self, rtype: ResourceType, body: Any, namespace: str | None) -> dict[str, Any]:
        """Check a request body is an object of this kind in this namespace; set apiVersion/kind."""
        if not isinstance(body, dict):
            raise ApiError(400, f"the body of the request must be a {rtype.kind} object")
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, "", rtype.kind):
            raise ApiError(400, f"the kind in the data ({obj['kind']}) does not match the expected kind ({rtype.kind})")
        if obj.get("apiVersion") not in (None, "", rtype.api_version):
            raise ApiError(
                400,
                f"the API version in the data ({obj['apiVersion']}) does not match the expected API version "
                f"({rtype.api_version})",
            )
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if rtype.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400, "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for key in ("labels", "annotations"):
            if meta.get(key) is None:
                meta.pop(key, None)
        return obj

    def _schema_checks(self, rtype: ResourceType, obj: dict[str, Any], call: Call) -> None:
        """Prune unknown fields, apply defaults, validate: what a CRD's structural schema does."""
        if rtype.schema is None:
            return
        dropped = schema.prune(obj, rtype.schema)
        if dropped and call.field_validation == "Strict":
            fields = ", ".join(f'unknown field "{d}"' for d in dropped)
            raise ApiError(400, f"strict decoding error: {fields}")
        if call.field_validation != "Ignore":
            call.warnings.extend(f'unknown field "{d}"' for d in dropped)
        schema.apply_defaults(obj, rtype.schema)
        causes = schema.validate(obj, rtype.schema)
        if causes:
            raise invalid(rtype.group_kind, obj["metadata"]["name"], rtype.group, rtype.kind, causes)

    def _crd_checks(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype.key != CRD_KEY:
            return
        causes = crds.check_crd(obj)
        if causes:
            raise invalid(rtype.group_kind, obj["metadata"].get("name", ""), rtype.group, rtype.kind, causes)

    # --- verbs ---------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Any, call: Call | None = None) -> dict:
        call = call or Call()
        self._need_verb(rtype, "create")
        obj = self._typed(rtype, body, namespace)
        meta = obj["metadata"]
        _assign_name(rtype, meta)
        for server_field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(server_field, None)
        if rtype.crd and rtype.status_subresource:
            obj.pop("status", None)
        kinds.prepare_create(rtype.kind, obj, rtype.status_subresource)
        self._crd_checks(rtype, obj)
        self._schema_checks(rtype, obj, call)
        with self._write:
            return self._insert(rtype, namespace, obj, call)

    def _insert(self, rtype: ResourceType, namespace: str | None, obj: dict[str, Any], call: Call) -> dict[str, Any]:
        """Store a new object (under the write lock): uid, timestamps; a CRD serves its kinds from now on."""
        meta = obj["metadata"]
        if rtype.namespaced:
            self._check_namespace(namespace or "")
        if self.store.get(rtype.key, meta.get("namespace", ""), meta["name"]) is not None:
            raise already_exists(rtype.group_resource, meta["name"], rtype.group, rtype.plural)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        if call.dry_run:
            return obj
        if rtype.key == CRD_KEY:
            obj["status"] = crds.established_status(obj, meta["creationTimestamp"])
            for served in crds.resource_types(obj):
                self.registry.add(served)
        stored = self.store.write(rtype.key, obj, "ADDED")
        if rtype.kind == "Namespace" and not rtype.group:
            self._namespace_added(meta["name"])
        return stored

    def _namespace_added(self, namespace: str) -> None:
        # The service account controller gives every namespace its `default` ServiceAccount.
        sa_type = self.resource("", "v1", "serviceaccounts")
        self.create(sa_type, namespace, {"metadata": {"name": "default"}})

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        self._need_verb(rtype, "get")
        if rtype.virtual:
            return metrics.get(self, rtype, namespace, name)
        return self._existing(rtype, namespace or "", name)

    def list(self, rtype: ResourceType, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None, cont: str | None = None) -> dict:
        self._need_verb(rtype, "list")
        labels, fields = label_matcher(label_selector), field_matcher(field_selector, rtype.kind)
        if rtype.virtual:
            items, rv = metrics.list_(self, rtype, namespace), self.store.resource_version
        else:
            items, rv = self.store.list(rtype.key, namespace)
        items = [o for o in items if labels(o) and fields(o)]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if cont:
            try:
                start = json.loads(base64.urlsafe_b64decode(cont.encode()))
            except ValueError:
                raise ApiError(400, "continue key is not valid: not a token this server issued") from None
            items = [o for o in items if [o["metadata"].get("namespace", ""), o["metadata"]["name"]] > start]
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = json.dumps([last.get("namespace", ""), last["name"]]).encode()
            meta["continue"] = base64.urlsafe_b64encode(token).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if not rtype.crd:
            # A list of a built-in kind carries kind/apiVersion once, not on each item.
            items = [_strip(o, "kind", "apiVersion") for o in items]
        return {"kind": f"{rtype.kind}List", "apiVersion": rtype.api_version, "metadata": meta, "items": items}

    def update(self, rtype: ResourceType, namespace: str | None, name: str, body: Any,
               subresource: str | None = None, call: Call | None = None) -> dict[str, Any]:
        """PUT: replace the object (or only its status through the status subresource)."""
        call = call or Call()
        self._need_verb(rtype, "update")
        self._need_subresource(rtype, subresource)
        new = self._typed(rtype, body, namespace)
        meta = new["metadata"]
        if meta.get("name") not in (None, name):
            raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        meta["name"] = name
        with self._write:
            old = self._existing(rtype, namespace or "", name)
            if meta.get("resourceVersion") and meta["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(rtype.group_resource, name, rtype.group, rtype.plural)
            return self._replace(rtype, old, new, subresource, call)

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, body: Any, content_type: str,
              subresource: str | None = None, call: Call | None = None) -> dict[str, Any]:
        call = call or Call()
        self._need_verb(rtype, "patch")
        self._need_subresource(rtype, subresource)
        with self._write:
            old = self._existing(rtype, namespace or "", name)
            patched = apply_patch(old, body, content_type, strategic=not rtype.crd)
            new = self._typed(rtype, patched, namespace)
            if new["metadata"].get("name") != name:
                raise ApiError(400, "metadata.name cannot be changed by a patch")
            wanted = new["metadata"].get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise conflict(rtype.group_resource, name, rtype.group, rtype.plural)
            return self._replace(rtype, old, new, subresource, call)

    def _need_subresource(self, rtype: ResourceType, subresource: str | None) -> None:
        if subresource is None:
            return
        if subresource != "status" or not rtype.status_subresource:
            raise ApiError(404, f"the server could not find the requested resource ({rtype.plural}/{subresource})")

    def _replace(self, rtype: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str | None,
                 call: Call) -> dict[str, Any]:
        if subresource == "status":
            new = _status_change(old, new)
        else:
            _keep_server_fields(rtype, old, new)
            kinds.prepare_update(rtype.kind, new, old)
            self._crd_checks(rtype, new)
        new["metadata"].pop("managedFields", None)
        self._schema_checks(rtype, new, call)
        ignored = ("metadata", "status") if rtype.status_subresource else ("metadata",)
        if _strip(new, *ignored) != _strip(old, *ignored):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old or call.dry_run:
            return new  # a no-op write keeps its resourceVersion, as on a real API server
        if old["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # The last finalizer is gone: the pending deletion completes.
            return self.store.remove(rtype.key, old["metadata"].get("namespace", ""), old["metadata"]["name"]) or new
        if rtype.key == CRD_KEY:
            new["status"] = crds.established_status(new, old["metadata"]["creationTimestamp"])
            for served in crds.resource_types(new):
                self.registry.add(served)
        return self.store.write(rtype.key, new, "MODIFIED")

    def delete(self, rtype: ResourceType, namespace: str | None, name: str, options: dict[str, Any] | None = None,
               call: Call | None = None) -> dict[str, Any]:
        call = call or Call()
        self._need_verb(rtype, "delete")
        options = options or {}
        with self._write:
            obj = self._existing(rtype, namespace or "", name)
            meta = obj["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta["uid"]:
                raise ApiError(409, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                               f"{meta['uid']}", name=name, group=rtype.group, kind=rtype.plural)
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise conflict(rtype.group_resource, name, rtype.group, rtype.plural)
            if call.dry_run:
                return obj
            if rtype.kind == "Namespace" and not rtype.group:
                return self._terminate_namespace(obj)
            if meta.get("finalizers") and not controllers.releasable(self, rtype, obj):
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = now()
                    meta["deletionGracePeriodSeconds"] = 0
                    return self.store.write(rtype.key, obj, "MODIFIED")
                return obj
            if rtype.key == CRD_KEY:
                self._remove_crd(obj)
            removed = self.store.remove(rtype.key, meta.get("namespace", ""), name) or obj
            controllers.after_delete(self, rtype, removed, options)
            return removed

    def delete_collection(self, rtype: ResourceType, namespace: str | None, label_selector: str | None,
                          field_selector: str | None, call: Call | None = None) -> dict[str, Any]:
        self._need_verb(rtype, "deletecollection")
        listed = self.list(rtype, namespace, label_selector, field_selector)
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                deleted.append(self.delete(rtype, meta.get("namespace"), meta["name"], call=call))
            except ApiError as exc:
                if exc.code != 404:  # deleted meanwhile
                    raise
        if not rtype.crd:
            deleted = [_strip(o, "kind", "apiVersion") for o in deleted]
        return {**listed, "items": deleted}

    def _remove_crd(self, crd: dict[str, Any]) -> None:
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        self.registry.remove_group_resource(group, plural)
        self.store.drop_kind(f"{group}/{plural}")

    def _terminate_namespace(self, ns: dict[str, Any]) -> dict[str, Any]:
        """Mark the namespace Terminating; its content and then itself go shortly after."""
        name = ns["metadata"]["name"]
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return ns
        ns["metadata"]["deletionTimestamp"] = now()
        ns["status"] = {"phase": "Terminating"}
        stored = self.store.write(NAMESPACES_KEY, ns, "MODIFIED")
        timer = threading.Timer(NAMESPACE_FINALIZE_SECONDS, self._finalize_namespace, args=(name,))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()
        return stored

    def _finalize_namespace(self, name: str) -> None:
        """The namespace controller: delete the content (pods first, so claims are released), then the namespace."""
        with self._write:
            keys = sorted(self.store.namespaced_keys(name), key=lambda k: (k[0] != "/pods", k))
            for key, obj_name in keys:
                for rtype in self.registry.by_key(key)[:1]:
                    try:
                        self.delete(rtype, name, obj_name)
                    except ApiError:
                        pass  # gone already (collected with its owner)
            for key, obj_name in self.store.namespaced_keys(name):
                self.store.remove(key, name, obj_name)  # what other finalizers still hold
            self.store.remove(NAMESPACES_KEY, "", name)

    # --- watch ---------------------------------------------------------------------------

    def watch(self, rtype: ResourceType, namespace: str | None, label_selector: str | None,
              field_selector: str | None, resource_version: str | None,
              timeout_seconds: float | None) -> Iterator[dict[str, Any]]:
        """Watch events (ADDED/MODIFIED/DELETED, or one ERROR) until the timeout passes."""
        self._need_verb(rtype, "watch")
        labels, fields = label_matcher(label_selector), field_matcher(field_selector, rtype.kind)
        deadline = time.monotonic() + (timeout_seconds if timeout_seconds is not None else DEFAULT_WATCH_SECONDS)
        start = None
        if resource_version not in (None, "", "0"):
            try:
                start = int(resource_version)
            except ValueError:
                raise ApiError(400, f"invalid resourceVersion {resource_version!r}: expected a number") from None
        return self._watch_events(rtype, namespace, lambda o: labels(o) and fields(o), start, deadline)

    def _watch_events(self, rtype: ResourceType, namespace: str | None, match: Any, start: int | None,
                      deadline: float) -> Iterator[dict[str, Any]]:
        if start is None:
            # No starting point: the current state first, as synthetic ADDED events.
            items, rv = self.store.list(rtype.key, namespace)
            for obj in items:
                if match(obj):
                    yield {"type": "ADDED", "object": obj}
        else:
            rv = start
        while time.monotonic() < deadline and not self.store.closed:
            events, fresh = self.store.events_after(rv)
            if not fresh:
                yield {"type": "ERROR", "object": ApiError(
                    410, f"too old resource version: {rv} ({self.store.resource_version})", "Expired").status()}
                return
            for event in events:
                rv = event.rv
                if event.key != rtype.key or (namespace is not None and event.namespace != namespace):
                    continue
                now_matches = match(event.obj)
                was_matching = event.old is not None and match(event.old)
                if event.type == "MODIFIED" and now_matches != was_matching:
                    kind = "ADDED" if now_matches else "DELETED"
                elif now_matches:
                    kind = event.type
                else:
                    continue
                yield {"type": kind, "object": copy.deepcopy(event.obj)}
            self.store.wait(rv, min(1.0, max(0.0, deadline - time.monotonic())))
