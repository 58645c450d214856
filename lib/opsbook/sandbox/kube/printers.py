"""The server's print columns of built-in kinds: what `kubectl get` shows.

Column definitions and cell formulas follow kubernetes/kubernetes
pkg/printers/internalversion/printers.go (1.32 line): the server always prints wide
(priority-1 columns included; kubectl hides them without `-o wide`). Descriptions are the
Go types' SwaggerDoc, which is the vendored OpenAPI spec's description of the same field.
Kinds without a printer get the API server's default table (k8s.io/apiserver
pkg/registry/rest/table.go): Name and Created At.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from opsbook.sandbox.kube.metrics import parse_quantity
from opsbook.sandbox.kube.openapi import swagger

Obj = dict[str, Any]
Column = dict[str, Any]


@lru_cache(maxsize=256)
def doc(definition: str, field: str) -> str:
    """The description of a field of a definition in the vendored spec (the Go type's SwaggerDoc)."""
    props = swagger()["definitions"].get(f"io.k8s.{definition}", {}).get("properties", {})
    return props.get(field, {}).get("description", "")


def column(name: str, type_: str = "string", description: str = "", priority: int = 0, fmt: str = "") -> Column:
    """A TableColumnDefinition; every field is sent (no omitempty)."""
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


META = "apimachinery.pkg.apis.meta.v1.ObjectMeta"


def name_column() -> Column:
    return column("Name", description=doc(META, "name"), fmt="name")


def age_column() -> Column:
    return column("Age", description=doc(META, "creationTimestamp"))


# --- time and quantities -------------------------------------------------------------------------


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery pkg/util/duration HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    return _hours_and_more(s // 3600, minutes)


def _hours_and_more(hours: int, minutes: int) -> str:
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def since(value: str | None, now: dt.datetime | None = None) -> str:
    """translateTimestampSince: `<unknown>` for no time, else the human duration until now."""
    moment = parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration(((now or dt.datetime.now(dt.UTC)) - moment).total_seconds())


_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def quantity(value: Any) -> str:
    """Quantity.String() for the binary-suffixed sizes volumes carry: `1024Mi` is `1Gi`."""
    if value is None:
        return "0"
    text = str(value)
    if not text.endswith("i"):
        return text
    amount = parse_quantity(text)
    for suffix, size in _BINARY:
        if amount >= size and amount % size == 0:
            return f"{amount // size}{suffix}"
    return text if amount != Decimal(0) else "0"


def access_modes(modes: list[str] | None) -> str:
    """helper.GetAccessModesAsString: RWO, ROX, RWX, RWOP in that order."""
    short = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
             ("ReadWriteOncePod", "RWOP"))
    return ",".join(abbr for mode, abbr in short if mode in (modes or []))


def selector_string(selector: dict[str, Any] | None) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): sorted `k=v` and set expressions."""
    if not selector:
        return ""
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), sorted(expr.get("values") or [])
        terms.append({"In": f"{key} in ({','.join(values)})", "NotIn": f"{key} notin ({','.join(values)})",
                      "Exists": key, "DoesNotExist": f"!{key}"}.get(op, key))
    return ",".join(sorted(terms))


def containers_cells(spec: dict[str, Any] | None) -> list[str]:
    """layoutContainerCells: container names and images, each joined by commas."""
    containers = (spec or {}).get("containers") or []
    return [",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)]


def _get(obj: Obj, *path: str) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# --- pods ----------------------------------------------------------------------------------------


def _restartable(container: dict[str, Any] | None) -> bool:
    return (container or {}).get("restartPolicy") == "Always"


def _init_reason(pod: Obj) -> tuple[str | None, int, bool]:
    """(reason, ready sidecars, initializing) from the init containers, as printPod walks them."""
    spec_init = {c.get("name"): c for c in _get(pod, "spec", "initContainers") or []}
    total = len(spec_init)
    ready = 0
    for i, status in enumerate(_get(pod, "status", "initContainerStatuses") or []):
        state = status.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if _restartable(spec_init.get(status.get("name"))) and status.get("started"):
            ready += 1 if status.get("ready") else 0
            continue
        if terminated is not None:
            if terminated.get("reason"):
                return "Init:" + terminated["reason"], ready, True
            if terminated.get("signal"):
                return f"Init:Signal:{terminated['signal']}", ready, True
            return f"Init:ExitCode:{terminated.get('exitCode', 0)}", ready, True
        if waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return "Init:" + waiting["reason"], ready, True
        return f"Init:{i}/{total}", ready, True
    return None, ready, False


def _condition_true(pod: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in _get(pod, "status", "conditions") or [])


def _last_restart(statuses: list[dict[str, Any]]) -> str | None:
    finished = [_get(s, "lastState", "terminated", "finishedAt") for s in statuses]
    return max((f for f in finished if f), default=None)


def pod_status(pod: Obj) -> tuple[str, int, int, int, str | None]:
    """(STATUS, ready containers, total containers, restarts, last restart time) as printPod computes them."""
    status = pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
           for c in status.get("conditions") or []):
        reason = "SchedulingGated"
    init_specs = _get(pod, "spec", "initContainers") or []
    total = len(_get(pod, "spec", "containers") or []) + sum(1 for c in init_specs if _restartable(c))
    init_reason, ready, initializing = _init_reason(pod)
    init_statuses = status.get("initContainerStatuses") or []
    restarts = sum(s.get("restartCount", 0) for s in init_statuses)
    last = _last_restart(init_statuses)
    if init_reason:
        reason = init_reason
    if not initializing or _condition_true(pod, "Initialized"):
        sidecars = [s for s in init_statuses if _restartable(next(
            (c for c in init_specs if c.get("name") == s.get("name")), None))]
        restarts = sum(s.get("restartCount", 0) for s in sidecars)
        containers = status.get("containerStatuses") or []
        last = _last_restart([*sidecars, *containers])
        restarts += sum(s.get("restartCount", 0) for s in containers)
        reason, ready = _containers_reason(pod, containers, reason, ready)
    if pod["metadata"].get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, total, restarts, last


def _containers_reason(pod: Obj, containers: list[dict[str, Any]], reason: str, ready: int) -> tuple[str, int]:
    has_running = False
    for container in reversed(containers):
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting is not None and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated is not None:
            reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                      else f"ExitCode:{terminated.get('exitCode', 0)}")
        elif container.get("ready") and state.get("running") is not None:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        reason = "Running" if _condition_true(pod, "Ready") else "NotReady"
    return reason, ready


def _pod_row(pod: Obj) -> list[Any]:
    reason, ready, total, restarts, last = pod_status(pod)
    restarts_text = f"{restarts} ({since(last)} ago)" if restarts and last else str(restarts)
    gates = _get(pod, "spec", "readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in _get(pod, "status", "conditions") or []}
    gates_text = (f"{sum(1 for g in gates if conditions.get(g.get('conditionType')) == 'True')}/{len(gates)}"
                  if gates else "<none>")
    ips = _get(pod, "status", "podIPs") or []
    return [pod["metadata"]["name"], f"{ready}/{total}", reason, restarts_text, since(pod["metadata"].get(
        "creationTimestamp")), (ips[0].get("ip") if ips else "") or "<none>",
        _get(pod, "spec", "nodeName") or "<none>", _get(pod, "status", "nominatedNodeName") or "<none>", gates_text]


def pod_row_conditions(pod: Obj) -> list[dict[str, str]] | None:
    """The row condition printPod gives a finished pod (Completed: Succeeded or Failed)."""
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


# --- other kinds ---------------------------------------------------------------------------------


def _deployment_row(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    template = _get(obj, "spec", "template", "spec")
    return [obj["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{_get(obj, 'spec', 'replicas') or 0}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
            since(obj["metadata"].get("creationTimestamp")), *containers_cells(template),
            selector_string(_get(obj, "spec", "selector"))]


def _statefulset_row(obj: Obj) -> list[Any]:
    ready = _get(obj, "status", "readyReplicas") or 0
    return [obj["metadata"]["name"], f"{ready}/{_get(obj, 'spec', 'replicas') or 0}",
            since(obj["metadata"].get("creationTimestamp")), *containers_cells(_get(obj, "spec", "template", "spec"))]


def _replicaset_row(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    return [obj["metadata"]["name"], _get(obj, "spec", "replicas") or 0, status.get("replicas", 0),
            status.get("readyReplicas", 0), since(obj["metadata"].get("creationTimestamp")),
            *containers_cells(_get(obj, "spec", "template", "spec")), selector_string(_get(obj, "spec", "selector"))]


def _daemonset_row(obj: Obj) -> list[Any]:
    status = obj.get("status") or {}
    node_selector = _get(obj, "spec", "template", "spec", "nodeSelector") or {}
    return [obj["metadata"]["name"], status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or "<none>",
            since(obj["metadata"].get("creationTimestamp")), *containers_cells(_get(obj, "spec", "template", "spec")),
            selector_string(_get(obj, "spec", "selector"))]


def _job_status(obj: Obj) -> str:
    conditions = {c.get("type"): c.get("status") for c in _get(obj, "status", "conditions") or []}
    if conditions.get("Complete") == "True":
        return "Complete"
    if conditions.get("Failed") == "True":
        return "Failed"
    if obj["metadata"].get("deletionTimestamp"):
        return "Terminating"
    if conditions.get("Suspended") == "True":
        return "Suspended"
    if conditions.get("FailureTarget") == "True":
        return "FailureTarget"
    return "Running"


def _job_row(obj: Obj) -> list[Any]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    took = "" if start is None else human_duration(((end or dt.datetime.now(dt.UTC)) - start).total_seconds())
    return [obj["metadata"]["name"], _job_status(obj), completions, took, since(obj["metadata"].get(
        "creationTimestamp")), *containers_cells(_get(obj, "spec", "template", "spec")),
        selector_string(spec.get("selector"))]


def _pvc_row(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if obj["metadata"].get("deletionTimestamp") else status.get("phase", "")
    bound = bool(spec.get("volumeName"))
    storage_class = ((obj["metadata"].get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class")
                     or spec.get("storageClassName") or "")
    return [obj["metadata"]["name"], phase, spec.get("volumeName", ""),
            quantity((status.get("capacity") or {}).get("storage")) if bound else "",
            access_modes(status.get("accessModes")) if bound else "", storage_class,
            spec.get("volumeAttributesClassName") or "<unset>", since(obj["metadata"].get("creationTimestamp")),
            spec.get("volumeMode") or "<unset>"]


def _pv_row(obj: Obj) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    storage_class = ((obj["metadata"].get("annotations") or {}).get("volume.beta.kubernetes.io/storage-class")
                     or spec.get("storageClassName") or "")
    return [obj["metadata"]["name"], quantity((spec.get("capacity") or {}).get("storage")),
            access_modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
            "Terminating" if obj["metadata"].get("deletionTimestamp") else status.get("phase", ""), claim,
            storage_class, spec.get("volumeAttributesClassName") or "<unset>", status.get("reason", ""),
            since(obj["metadata"].get("creationTimestamp")), spec.get("volumeMode") or "<unset>"]


def _node_row(obj: Obj) -> list[Any]:
    ready = next((c for c in _get(obj, "status", "conditions") or [] if c.get("type") == "Ready"), None)
    status = ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if _get(obj, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    labels = obj["metadata"].get("labels") or {}
    roles = {k.removeprefix("node-role.kubernetes.io/") for k in labels if k.startswith("node-role.kubernetes.io/")}
    roles.discard("")
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    info = _get(obj, "status", "nodeInfo") or {}
    addresses = _get(obj, "status", "addresses") or []

    def address(kind: str) -> str:
        return next((a["address"] for a in addresses if a.get("type") == kind), "<none>")

    return [obj["metadata"]["name"], ",".join(status), ",".join(sorted(roles)) or "<none>",
            since(obj["metadata"].get("creationTimestamp")), info.get("kubeletVersion", ""), address("InternalIP"),
            address("ExternalIP"), info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _event_row(obj: Obj) -> list[Any]:
    first = since(obj.get("firstTimestamp")) if obj.get("firstTimestamp") else since(obj.get("eventTime"))
    last = since(obj["lastTimestamp"]) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 1
    if obj.get("series"):
        last, count = since(obj["series"].get("lastObservedTime")), obj["series"].get("count", 0)
    involved = obj.get("involvedObject") or {}
    target = (f"{involved.get('kind', '').lower()}/{involved['name']}" if involved.get("name")
              else involved.get("kind", "").lower())
    source = obj.get("source") or {}
    component = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [last, obj.get("type", ""), obj.get("reason", ""), target, involved.get("fieldPath", ""),
            f"{component}, {host}" if host else component, (obj.get("message") or "").strip(), first, count,
            obj["metadata"]["name"]]


def _service_row(obj: Obj) -> list[Any]:
    spec = obj.get("spec") or {}
    kind = spec.get("type", "")
    external = {"ClusterIP": ",".join(spec.get("externalIPs") or []) or "<none>",
                "NodePort": ",".join(spec.get("externalIPs") or []) or "<none>",
                "ExternalName": spec.get("externalName", "")}.get(kind)
    if kind == "LoadBalancer":
        ingress = _get(obj, "status", "loadBalancer", "ingress") or []
        found = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
        external = ",".join([*found, *(spec.get("externalIPs") or [])]) or "<pending>"
    ports = ",".join(f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort")
                     else f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [obj["metadata"]["name"], kind, (spec.get("clusterIPs") or ["<none>"])[0],
            external if external is not None else "<unknown>", ports or "<none>",
            since(obj["metadata"].get("creationTimestamp")), selector]


def _storage_class_row(obj: Obj) -> list[Any]:
    annotations = obj["metadata"].get("annotations") or {}
    default = "true" in (annotations.get("storageclass.kubernetes.io/is-default-class"),
                         annotations.get("storageclass.beta.kubernetes.io/is-default-class"))
    return [obj["metadata"]["name"] + (" (default)" if default else ""), obj.get("provisioner", ""),
            obj.get("reclaimPolicy") or "Delete", obj.get("volumeBindingMode") or "Immediate",
            bool(obj.get("allowVolumeExpansion")), since(obj["metadata"].get("creationTimestamp"))]


def _age(obj: Obj) -> str:
    return since(obj["metadata"].get("creationTimestamp"))


@lru_cache(maxsize=1)
def _printers() -> dict[str, tuple[list[Column], Callable[[Obj], list[Any]]]]:
    """Column definitions and row function of each built-in kind ("group/Kind")."""
    core, apps = "api.core.v1", "api.apps.v1"
    wide_containers = [column("Containers", description="Names of each container in the template.", priority=1),
                       column("Images", description="Images referenced by each container in the template.",
                              priority=1)]
    return {
        "/Pod": ([name_column(),
                  column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
                  column("Status", description="The aggregate status of the containers in this pod."),
                  column("Restarts", description="The number of times the containers in this pod have been "
                                                 "restarted and when the last container in this pod has restarted."),
                  age_column(), column("IP", description=doc(f"{core}.PodStatus", "podIP"), priority=1),
                  column("Node", description=doc(f"{core}.PodSpec", "nodeName"), priority=1),
                  column("Nominated Node", description=doc(f"{core}.PodStatus", "nominatedNodeName"), priority=1),
                  column("Readiness Gates", description=doc(f"{core}.PodSpec", "readinessGates"), priority=1)],
                 _pod_row),
        "apps/Deployment": ([name_column(), column("Ready", description="Number of the pod with ready state"),
                             column("Up-to-date", description=doc(f"{apps}.DeploymentStatus", "updatedReplicas")),
                             column("Available", description=doc(f"{apps}.DeploymentStatus", "availableReplicas")),
                             age_column(), *wide_containers,
                             column("Selector", description=doc(f"{apps}.DeploymentSpec", "selector"), priority=1)],
                            _deployment_row),
        "apps/StatefulSet": ([name_column(), column("Ready", description="Number of the pod with ready state"),
                              age_column(), *wide_containers], _statefulset_row),
        "apps/ReplicaSet": ([name_column(), column("Desired", "integer", doc(f"{apps}.ReplicaSetSpec", "replicas")),
                             column("Current", "integer", doc(f"{apps}.ReplicaSetStatus", "replicas")),
                             column("Ready", "integer", doc(f"{apps}.ReplicaSetStatus", "readyReplicas")),
                             age_column(), *wide_containers,
                             column("Selector", description=doc(f"{apps}.ReplicaSetSpec", "selector"), priority=1)],
                            _replicaset_row),
        "apps/DaemonSet": ([name_column(),
                            column("Desired", "integer", doc(f"{apps}.DaemonSetStatus", "desiredNumberScheduled")),
                            column("Current", "integer", doc(f"{apps}.DaemonSetStatus", "currentNumberScheduled")),
                            column("Ready", "integer", doc(f"{apps}.DaemonSetStatus", "numberReady")),
                            column("Up-to-date", "integer", doc(f"{apps}.DaemonSetStatus", "updatedNumberScheduled")),
                            column("Available", "integer", doc(f"{apps}.DaemonSetStatus", "numberAvailable")),
                            column("Node Selector", description=doc(f"{core}.PodSpec", "nodeSelector")),
                            age_column(), *wide_containers,
                            column("Selector", description=doc(f"{apps}.DaemonSetSpec", "selector"), priority=1)],
                           _daemonset_row),
        "batch/Job": ([name_column(), column("Status", description="Status of the job."),
                       column("Completions", description=doc("api.batch.v1.JobStatus", "succeeded")),
                       column("Duration", description="Time required to complete the job."), age_column(),
                       *wide_containers,
                       column("Selector", description=doc("api.batch.v1.JobSpec", "selector"), priority=1)],
                      _job_row),
        "/PersistentVolumeClaim": ([name_column(),
                                    column("Status", description=doc(f"{core}.PersistentVolumeClaimStatus", "phase")),
                                    column("Volume", description=doc(f"{core}.PersistentVolumeClaimSpec",
                                                                     "volumeName")),
                                    column("Capacity", description=doc(f"{core}.PersistentVolumeClaimStatus",
                                                                       "capacity")),
                                    column("Access Modes", description=doc(f"{core}.PersistentVolumeClaimStatus",
                                                                           "accessModes")),
                                    column("StorageClass", description="StorageClass of the pvc"),
                                    column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
                                    age_column(),
                                    column("VolumeMode", description=doc(f"{core}.PersistentVolumeClaimSpec",
                                                                         "volumeMode"), priority=1)], _pvc_row),
        "/PersistentVolume": ([name_column(),
                               column("Capacity", description=doc(f"{core}.PersistentVolumeSpec", "capacity")),
                               column("Access Modes", description=doc(f"{core}.PersistentVolumeSpec", "accessModes")),
                               column("Reclaim Policy", description=doc(f"{core}.PersistentVolumeSpec",
                                                                        "persistentVolumeReclaimPolicy")),
                               column("Status", description=doc(f"{core}.PersistentVolumeStatus", "phase")),
                               column("Claim", description=doc(f"{core}.PersistentVolumeSpec", "claimRef")),
                               column("StorageClass", description="StorageClass of the pv"),
                               column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
                               column("Reason", description=doc(f"{core}.PersistentVolumeStatus", "reason")),
                               age_column(),
                               column("VolumeMode", description=doc(f"{core}.PersistentVolumeSpec", "volumeMode"),
                                      priority=1)], _pv_row),
        "/Node": ([name_column(), column("Status", description="The status of the node"),
                   column("Roles", description="The roles of the node"), age_column(),
                   column("Version", description=doc(f"{core}.NodeSystemInfo", "kubeletVersion")),
                   column("Internal-IP", description=doc(f"{core}.NodeStatus", "addresses"), priority=1),
                   column("External-IP", description=doc(f"{core}.NodeStatus", "addresses"), priority=1),
                   column("OS-Image", description=doc(f"{core}.NodeSystemInfo", "osImage"), priority=1),
                   column("Kernel-Version", description=doc(f"{core}.NodeSystemInfo", "kernelVersion"), priority=1),
                   column("Container-Runtime", description=doc(f"{core}.NodeSystemInfo", "containerRuntimeVersion"),
                          priority=1)], _node_row),
        "/Event": ([column("Last Seen", description=doc(f"{core}.Event", "lastTimestamp")),
                    column("Type", description=doc(f"{core}.Event", "type")),
                    column("Reason", description=doc(f"{core}.Event", "reason")),
                    column("Object", description=doc(f"{core}.Event", "involvedObject")),
                    column("Subobject", description=doc(f"{core}.ObjectReference", "fieldPath"), priority=1),
                    column("Source", description=doc(f"{core}.Event", "source"), priority=1),
                    column("Message", description=doc(f"{core}.Event", "message")),
                    column("First Seen", description=doc(f"{core}.Event", "firstTimestamp"), priority=1),
                    column("Count", description=doc(f"{core}.Event", "count"), priority=1),
                    column("Name", description=doc(META, "name"), priority=1, fmt="name")], _event_row),
        "/Namespace": ([name_column(), column("Status", description="The status of the namespace"), age_column()],
                       lambda o: [o["metadata"]["name"], _get(o, "status", "phase") or "", _age(o)]),
        "/Secret": ([name_column(), column("Type", description=doc(f"{core}.Secret", "type")),
                     column("Data", description=doc(f"{core}.Secret", "data")), age_column()],
                    lambda o: [o["metadata"]["name"], o.get("type", ""), len(o.get("data") or {}), _age(o)]),
        "/ConfigMap": ([name_column(), column("Data", description=doc(f"{core}.ConfigMap", "data")), age_column()],
                       lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                  _age(o)]),
        "/ServiceAccount": ([name_column(), column("Secrets", description=doc(f"{core}.ServiceAccount", "secrets")),
                             age_column()],
                            lambda o: [o["metadata"]["name"], len(o.get("secrets") or []), _age(o)]),
        "/Service": ([name_column(), column("Type", description=doc(f"{core}.ServiceSpec", "type")),
                      column("Cluster-IP", description=doc(f"{core}.ServiceSpec", "clusterIP")),
                      column("External-IP", description=doc(f"{core}.ServiceSpec", "externalIPs")),
                      column("Port(s)", description=doc(f"{core}.ServiceSpec", "ports")), age_column(),
                      column("Selector", description=doc(f"{core}.ServiceSpec", "selector"), priority=1)],
                     _service_row),
        "storage.k8s.io/StorageClass": ([name_column(),
                                         column("Provisioner", description=doc("api.storage.v1.StorageClass",
                                                                               "provisioner")),
                                         column("ReclaimPolicy", description=doc("api.storage.v1.StorageClass",
                                                                                 "reclaimPolicy")),
                                         column("VolumeBindingMode", description=doc("api.storage.v1.StorageClass",
                                                                                     "volumeBindingMode")),
                                         column("AllowVolumeExpansion", description=doc(
                                             "api.storage.v1.StorageClass", "allowVolumeExpansion")),
                                         age_column()], _storage_class_row),
    }


def _default() -> tuple[list[Column], Callable[[Obj], list[Any]]]:
    """pkg/registry/rest/table.go: Name and Created At (RFC 3339, UTC)."""
    columns = [name_column(), column("Created At", "date", doc(META, "creationTimestamp"))]
    return columns, lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp")]


def printer(group: str, kind: str) -> tuple[list[Column], Callable[[Obj], list[Any]]]:
    """The columns and the row function the server uses for a built-in kind."""
    return _printers().get(f"{group}/{kind}") or _default()


def extra_conditions(group: str, kind: str, obj: Obj) -> list[dict[str, str]] | None:
    return pod_row_conditions(obj) if (group, kind) == ("", "Pod") else None
