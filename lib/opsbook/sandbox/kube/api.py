"""The API server's verbs over the store: create, get, list, update, patch, apply, delete, watch.

HTTP-free: `server.py` maps requests onto these calls, errors are `ApiError`s that
become `Status` answers. Every write records its field manager in metadata.managedFields
(managed.py); built-in kinds are decoded against the vendored OpenAPI spec (unknown fields
dropped, and reported as `fieldValidation` asks), custom resources against their CRD's
structural schema. The controllers (loop.py and the modules it runs) act on what is written.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from opsbook.sandbox.kube import (
    binder,
    controllers,
    crds,
    fields,
    kinds,
    kubelet,
    managed,
    metrics,
    namespaces,
    replicasets,
    schema,
    statefulsets,
    watch,
)
from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.errors import ApiError, already_exists, conflict, invalid, not_found
from opsbook.sandbox.kube.logs import PodLogs
from opsbook.sandbox.kube.loop import ControllerLoop
from opsbook.sandbox.kube.openapi import Documents, OpenApi
from opsbook.sandbox.kube.patching import APPLY, apply_patch
from opsbook.sandbox.kube.resources import Registry, ResourceType
from opsbook.sandbox.kube.selectors import field_matcher, label_matcher
from opsbook.sandbox.kube.store import Store

CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
NAMESPACES_KEY, PODS_KEY, NODES_KEY = "/namespaces", "/pods", "/nodes"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# How long the PV controller takes to bind a claim (it works from its own queue, never in the request).
BIND_DELAY_SECONDS = 1.0
DEFAULT_POD_GRACE_SECONDS = 30


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    if "managedFields" in new["metadata"]:
        changed["metadata"]["managedFields"] = new["metadata"]["managedFields"]
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
    """The emulated API server's state, verbs and controllers."""

    def __init__(self, bind_delay: float = BIND_DELAY_SECONDS, pod_subnets: dict[str, str] | None = None) -> None:
        self.registry = Registry()
        self.store = Store()
        self.server_address = "127.0.0.1"  # host:port, set by the HTTP server (/api reports it)
        self._write = threading.RLock()  # one writer at a time: checks and writes stay consistent
        self.bind_delay = bind_delay
        self.pod_subnets = dict(pod_subnets or {})  # zone -> CIDR pods get addresses from
        self.logs = PodLogs()
        self.openapi = OpenApi()
        self._schemas: dict[tuple[str, str, str], fields.Schema] = {}
        self.loop = ControllerLoop(self)
        for module in (replicasets, statefulsets, kubelet, binder, namespaces):
            module.register(self.loop)
        ns_type = self.resource("", "v1", "namespaces")
        for name in SYSTEM_NAMESPACES:
            self.create(ns_type, None, {"metadata": {"name": name}}, Call(manager="kube-apiserver"))
        crd_type = self.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for crd in crds.bundled_crds():
            self.create(crd_type, None, crd, Call(manager="kube-apiserver"))

    def start_controllers(self) -> None:
        """The controller manager, scheduler and kubelets start acting on what is written from now on."""
        if not self.loop.running:
            self.loop.start()

    def close(self) -> None:
        self.loop.stop()
        self.store.close()

    # --- lookup ------------------------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self.registry.get(group, version, plural)
        if rtype is None:
            gv = f"{group}/{version}" if group else version
            raise ApiError(404, f"the server could not find the requested resource ({plural} in {gv})")
        return rtype

    def schema(self, rtype: ResourceType) -> fields.Schema:
        key = (rtype.group, rtype.version, rtype.kind)
        if key not in self._schemas:
            self._schemas[key] = fields.schema_for(rtype.group, rtype.version, rtype.kind, rtype.schema)
        return self._schemas[key]

    def openapi_documents(self) -> Documents:
        """The OpenAPI documents of the kinds served now (rebuilt when CRDs change)."""
        group_versions = {(t.group, t.version) for t in self.registry.all()}
        installed, _ = self.store.list(CRD_KEY)
        return self.openapi.documents(group_versions, installed)

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
        """NamespaceLifecycle admission: no new content in a missing or Terminating namespace."""
        ns = self.store.get(NAMESPACES_KEY, "", namespace)
        if ns is None:
            raise not_found("namespaces", namespace, "", "namespaces")
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"unable to create new content in namespace {namespace} because it is being terminated",
                name=namespace, kind="namespaces",
                causes=[{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                         "field": "metadata.namespace"}],
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

    def _unknown_fields(self, rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
        """Drop the fields the kind's schema lacks (CRD pruning, or decoding a built-in kind)."""
        if rtype.schema is not None:
            return schema.prune(obj, rtype.schema)
        if rtype.virtual:
            return []
        return fields.prune_unknown(obj, self.schema(rtype))

    def _schema_checks(self, rtype: ResourceType, obj: dict[str, Any], call: Call) -> None:
        """Prune unknown fields (reported as fieldValidation asks), apply defaults, validate a CRD's schema."""
        dropped = self._unknown_fields(rtype, obj)
        if dropped and call.field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{d}"' for d in dropped)
            if rtype.crd:
                raise ApiError(400, f"strict decoding error: {unknown}")
            raise ApiError(400, f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
                                f"strict decoding error: {unknown}")
        if call.field_validation != "Ignore":
            call.warnings.extend(f'unknown field "{d}"' for d in dropped)
        if rtype.schema is None:
            return
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

    # --- create, read ----------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Any, call: Call | None = None) -> dict:
        call = call or Call()
        self._need_verb(rtype, "create")
        obj = self._typed(rtype, body, namespace)
        _assign_name(rtype, obj["metadata"])
        with self._write:
            return self._create(rtype, namespace, obj, call, record=True)

    def _create(self, rtype: ResourceType, namespace: str | None, obj: dict[str, Any], call: Call,
                record: bool) -> dict[str, Any]:
        meta = obj["metadata"]
        for server_field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        if rtype.crd and rtype.status_subresource:
            obj.pop("status", None)
        kinds.prepare_create(rtype.kind, obj, rtype.status_subresource)
        self._crd_checks(rtype, obj)
        self._schema_checks(rtype, obj, call)
        if record:
            managed.record_update(None, obj, self.schema(rtype), call.manager, rtype.api_version)
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
        if rtype.key == NAMESPACES_KEY:
            # The service account controller gives every namespace its `default` ServiceAccount.
            self.create(self.resource("", "v1", "serviceaccounts"), meta["name"], {"metadata": {"name": "default"}},
                        Call(manager="kube-controller-manager"))
        return stored

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        self._need_verb(rtype, "get")
        if rtype.virtual:
            return metrics.get(self, rtype, namespace, name)
        return self._existing(rtype, namespace or "", name)

    def list(self, rtype: ResourceType, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None, cont: str | None = None) -> dict:
        self._need_verb(rtype, "list")
        labels, selected = label_matcher(label_selector), field_matcher(field_selector, rtype.kind)
        if rtype.virtual:
            items, rv = metrics.list_(self, rtype, namespace), self.store.resource_version
        else:
            items, rv = self.store.list(rtype.key, namespace)
        items = [o for o in items if labels(o) and selected(o)]
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

    # --- update, patch, apply ----------------------------------------------------------------

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
              subresource: str | None = None, call: Call | None = None,
              managed_subresource: str | None = None) -> dict[str, Any]:
        """PATCH: merge, strategic merge or JSON patch; an apply patch goes to `apply`."""
        call = call or Call()
        self._need_verb(rtype, "patch")
        self._need_subresource(rtype, subresource)
        if content_type.split(";")[0].strip() == APPLY:
            return self.apply(rtype, namespace, name, body, call)[0]
        with self._write:
            old = self._existing(rtype, namespace or "", name)
            patched = apply_patch(old, body, content_type, strategic=not rtype.crd)
            new = self._typed(rtype, patched, namespace)
            if new["metadata"].get("name") != name:
                raise ApiError(400, "metadata.name cannot be changed by a patch")
            wanted = new["metadata"].get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise conflict(rtype.group_resource, name, rtype.group, rtype.plural)
            return self._replace(rtype, old, new, subresource, call, managed_as=managed_subresource)

    def _check_applied(self, rtype: ResourceType, namespace: str | None, name: str, body: Any) -> dict[str, Any]:
        """The applied configuration, checked as fieldmanager's structured-merge manager does."""
        if not isinstance(body, dict):
            raise ApiError(400, "error decoding YAML: the apply patch must be an object")
        if body.get("apiVersion") != rtype.api_version or body.get("kind") != rtype.kind:
            raise ApiError(400, f"Incorrect version specified in apply patch. Specified patch version: "
                                f"{body.get('apiVersion')}, expected: {rtype.api_version}")
        if (body.get("metadata") or {}).get("managedFields") is not None:
            raise ApiError(400, "metadata.managedFields must be nil")
        applied = self._typed(rtype, body, namespace)
        if applied["metadata"].get("name") not in (None, name):
            raise ApiError(400, f"the name of the object ({applied['metadata']['name']}) does not match the name on "
                                f"the URL ({name})")
        applied["metadata"]["name"] = name
        unknown = self._unknown_fields(rtype, copy.deepcopy(applied))
        if unknown:
            gvk = f"{rtype.api_version}, Kind={rtype.kind}"
            declared = "; ".join(f".{u}: field not declared in schema" for u in unknown)
            raise ApiError(500, f"failed to create typed patch object ({namespace or ''}/{name}; {gvk}): {declared}",
                           reason="")
        return applied

    def apply(self, rtype: ResourceType, namespace: str | None, name: str, body: Any,
              call: Call) -> tuple[dict[str, Any], bool]:
        """Server-side apply; (the object, True when the apply created it)."""
        applied = self._check_applied(rtype, namespace, name, body)
        with self._write:
            live = self.store.get(rtype.key, namespace or "", name)
            merged = managed.apply(live, applied, self.schema(rtype), call.manager, call.force, rtype.api_version)
            if live is None:
                merged["apiVersion"], merged["kind"] = rtype.api_version, rtype.kind
                return self._create(rtype, namespace, merged, call, record=False), True
            return self._replace(rtype, live, merged, None, call, record=False), False

    def _need_subresource(self, rtype: ResourceType, subresource: str | None) -> None:
        if subresource is None:
            return
        if subresource != "status" or not rtype.status_subresource:
            raise ApiError(404, f"the server could not find the requested resource ({rtype.plural}/{subresource})")

    def _replace(self, rtype: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str | None,
                 call: Call, record: bool = True, managed_as: str | None = None) -> dict[str, Any]:
        if subresource == "status":
            new = _status_change(old, new)
        else:
            _keep_server_fields(rtype, old, new)
            kinds.prepare_update(rtype.kind, new, old)
            self._crd_checks(rtype, new)
        self._schema_checks(rtype, new, call)
        if record:
            managed.record_update(old, new, self.schema(rtype), call.manager, rtype.api_version,
                                  managed_as or subresource or "")
        ignored = ("metadata", "status") if rtype.status_subresource else ("metadata",)
        if _strip(new, *ignored) != _strip(old, *ignored):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old or call.dry_run:
            return new  # a no-op write keeps its resourceVersion, as on a real API server
        if old["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") and \
                not self._still_graceful(rtype, new):
            # The last finalizer is gone: the pending deletion completes.
            removed = self.store.remove(rtype.key, old["metadata"].get("namespace", ""), old["metadata"]["name"])
            if removed is not None:
                controllers.after_delete(self, rtype, removed, {})
            return removed or new
        if rtype.key == CRD_KEY:
            new["status"] = crds.established_status(new, old["metadata"]["creationTimestamp"])
            for served in crds.resource_types(new):
                self.registry.add(served)
        return self.store.write(rtype.key, new, "MODIFIED")

    # --- delete ------------------------------------------------------------------------------

    def _still_graceful(self, rtype: ResourceType, obj: dict[str, Any]) -> bool:
        """A pod in graceful deletion waits for its kubelet even when no finalizer holds it."""
        return rtype.key == PODS_KEY and bool(obj["metadata"].get("deletionGracePeriodSeconds"))

    def _pod_grace(self, pod: dict[str, Any], options: dict[str, Any]) -> int:
        """The grace period a pod's deletion gets: 0 (at once) unless a running kubelet must stop it."""
        node = (pod.get("spec") or {}).get("nodeName")
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if not node or finished or self.store.get(NODES_KEY, "", node) is None:
            return 0  # never started, done, or orphaned: nothing to stop (pod strategy, PodGC)
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", DEFAULT_POD_GRACE_SECONDS)
        return max(0, int(grace))

    def _mark_deleting(self, rtype: ResourceType, obj: dict[str, Any], grace: int) -> dict[str, Any]:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and meta.get("deletionGracePeriodSeconds", 0) <= grace:
            return obj
        moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=grace)
        meta["deletionTimestamp"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["deletionGracePeriodSeconds"] = grace
        return self.store.write(rtype.key, obj, "MODIFIED")

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
            if rtype.key == NAMESPACES_KEY:
                return namespaces.terminate(self, obj)
            if rtype.key == PODS_KEY and (grace := self._pod_grace(obj, options)) > 0:
                return self._mark_deleting(rtype, obj, grace)
            if meta.get("finalizers") and not controllers.releasable(self, rtype, obj):
                return self._mark_deleting(rtype, obj, 0)
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

    # --- watch -------------------------------------------------------------------------------

    def watch(self, rtype: ResourceType, namespace: str | None, label_selector: str | None,
              field_selector: str | None, resource_version: str | None,
              timeout_seconds: float | None) -> Iterator[dict[str, Any]]:
        """Watch events (ADDED/MODIFIED/DELETED, or one ERROR) until the timeout passes."""
        self._need_verb(rtype, "watch")
        labels, selected = label_matcher(label_selector), field_matcher(field_selector, rtype.kind)
        start = watch.start_version(resource_version)
        return watch.events(self.store, rtype, namespace, lambda o: labels(o) and selected(o), start,
                            timeout_seconds)
