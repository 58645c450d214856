"""The scheduler (kube-scheduler): a pending pod gets a node, or the reason it gets none.

The filters of k8s.io/kubernetes pkg/scheduler/framework/plugins: NodeUnschedulable, the
Ready condition (TaintToleration of the not-ready taint), NodeResourcesFit (requests against
allocatable, pod count), NodeAffinity (nodeSelector), VolumeBinding (claims must exist and be
bound, or for WaitForFirstConsumer be bindable to an available volume on the node, unless
pre-bound to one by spec.volumeName: those wait for the PV controller; bound volumes' node
affinity, e.g. an EBS volume's zone). The score picks the least allocated node
(NodeResourcesFit LeastAllocated on CPU). Binding sets spec.nodeName and the PodScheduled
condition with a `Scheduled` event; a pod no node takes gets PodScheduled=False/Unschedulable
and a `FailedScheduling` event worded as the scheduler words them, and is retried.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opsbook.sandbox.kube import binder, events, ownership
from opsbook.sandbox.kube.call import Call
from opsbook.sandbox.kube.metrics import parse_quantity
from opsbook.sandbox.kube.objects import now

if TYPE_CHECKING:
    from opsbook.sandbox.kube.api import Api

COMPONENT = "default-scheduler"
RETRY_SECONDS = 2.0


def _requests(pod: dict[str, Any]) -> tuple[Decimal, Decimal]:
    cpu = memory = Decimal(0)
    for container in (pod.get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += parse_quantity(requests.get("cpu", "0"))
        memory += parse_quantity(requests.get("memory", "0"))
    return cpu, memory


def _ready(node: dict[str, Any]) -> bool:
    return ownership.condition_true(node, "Ready")


def _affinity_terms(pv: dict[str, Any]) -> list[list[dict[str, Any]]]:
    required = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
    return [t.get("matchExpressions") or [] for t in required.get("nodeSelectorTerms") or []]


def volume_fits(pv: dict[str, Any], node: dict[str, Any]) -> bool:
    """A volume's node affinity (any term whose expressions all hold) allows the node."""
    terms = _affinity_terms(pv)
    labels = node["metadata"].get("labels") or {}

    def holds(expr: dict[str, Any]) -> bool:
        value, values = labels.get(expr.get("key")), expr.get("values") or []
        return {"In": value in values, "NotIn": value not in values, "Exists": value is not None,
                "DoesNotExist": value is None}.get(expr.get("operator"), False)

    return not terms or any(all(holds(e) for e in term) for term in terms)


class Scheduling:
    """One scheduling attempt of one pod."""

    def __init__(self, api: Api, pod: dict[str, Any]) -> None:
        self.api, self.pod = api, pod
        self.nodes, _ = api.store.list("/nodes")
        self.pods, _ = api.store.list("/pods")
        self.claims: list[dict[str, Any]] = []
        self.bindings: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}

    def claim_problem(self) -> str | None:
        """Why the pod's claims keep it from every node, or None."""
        namespace = self.pod["metadata"]["namespace"]
        for volume in (self.pod.get("spec") or {}).get("volumes") or []:
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not name:
                continue
            claim = self.api.store.get(binder.PVCS, namespace, name)
            if claim is None:
                return f'persistentvolumeclaim "{name}" not found'
            if claim["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{name}" is being deleted'
            bound = (claim.get("status") or {}).get("phase") == "Bound"
            # a claim pre-bound to a volume (spec.volumeName, as a restored one) waits for the PV
            # controller whatever its class's binding mode (volume_binding.go GetPodVolumeClaims)
            prebound = bool((claim.get("spec") or {}).get("volumeName"))
            if not bound and (prebound or binder.binding_mode(self.api, claim) != "WaitForFirstConsumer"):
                return "pod has unbound immediate PersistentVolumeClaims"
            self.claims.append(claim)
        return None

    def _volume_reason(self, node: dict[str, Any]) -> str | None:
        pairs = []
        for claim in self.claims:
            if (claim.get("status") or {}).get("phase") == "Bound":
                pv = self.api.store.get(binder.PVS, "", (claim.get("spec") or {}).get("volumeName", ""))
                if pv is not None and not volume_fits(pv, node):
                    return "node(s) had volume node affinity conflict"
                continue
            taken = {p["metadata"]["name"] for _, p in pairs}
            pv = binder.best_volume(self.api, claim, lambda v, taken=taken: volume_fits(v, node)
                                    and v["metadata"]["name"] not in taken)
            if pv is None:
                return "node(s) didn't find available persistent volumes to bind"
            pairs.append((claim, pv))
        self.bindings[node["metadata"]["name"]] = pairs
        return None

    def _resource_reason(self, node: dict[str, Any]) -> str | None:
        name = node["metadata"]["name"]
        on_node = [p for p in self.pods if (p.get("spec") or {}).get("nodeName") == name
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        cpu, memory = _requests(self.pod)
        used_cpu = sum((_requests(p)[0] for p in on_node), Decimal(0))
        used_memory = sum((_requests(p)[1] for p in on_node), Decimal(0))
        if len(on_node) + 1 > int(allocatable.get("pods", "110")):
            return "Too many pods"
        if cpu and used_cpu + cpu > parse_quantity(allocatable.get("cpu", "0")):
            return "Insufficient cpu"
        if memory and used_memory + memory > parse_quantity(allocatable.get("memory", "0")):
            return "Insufficient memory"
        return None

    def reason(self, node: dict[str, Any]) -> str | None:
        """Why this node cannot take the pod, in the scheduler's words; None when it can."""
        if (node.get("spec") or {}).get("unschedulable"):
            return "node(s) were unschedulable"
        if not _ready(node):
            return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
        selector = (self.pod.get("spec") or {}).get("nodeSelector") or {}
        labels = node["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            return "node(s) didn't match Pod's node affinity/selector"
        return self._resource_reason(node) or self._volume_reason(node)

    def cpu_share(self, node: dict[str, Any]) -> Decimal:
        name = node["metadata"]["name"]
        used = sum((_requests(p)[0] for p in self.pods if (p.get("spec") or {}).get("nodeName") == name), Decimal(0))
        total = parse_quantity(((node.get("status") or {}).get("allocatable") or {}).get("cpu", "1")) or Decimal(1)
        return used / total


def _message(total: int, reasons: Counter[str] | str) -> str:
    if isinstance(reasons, str):
        detail = reasons
    else:
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    return (f"0/{total} nodes are available: {detail}. preemption: 0/{total} nodes are available: "
            f"{total} Preemption is not helpful for scheduling.")


def _unschedulable(api: Api, pod: dict[str, Any], message: str, call: Any) -> float:
    conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                       "lastProbeTime": None, "lastTransitionTime": now()})
    previous = next((c for c in (pod.get("status") or {}).get("conditions") or []
                     if c.get("type") == "PodScheduled"), {})
    if previous.get("message") != message:
        api.patch(api.resource("", "v1", "pods"), pod["metadata"]["namespace"], pod["metadata"]["name"],
                  {"status": {"conditions": conditions}}, "application/merge-patch+json", "status", call)
    events.record(api, pod, "FailedScheduling", message, COMPONENT, "Warning")
    return RETRY_SECONDS


def schedule(api: Api, pod: dict[str, Any]) -> float | None:
    """Bind a pending pod to a node, or record why it stays Pending (then retry later)."""
    call = Call(manager="kube-scheduler")
    attempt = Scheduling(api, pod)
    total = len(attempt.nodes)
    problem = attempt.claim_problem()
    if problem is not None:
        return _unschedulable(api, pod, _message(total, problem), call)
    reasons: Counter[str] = Counter()
    fitting = []
    for node in attempt.nodes:
        why = attempt.reason(node)
        if why is None:
            fitting.append(node)
        else:
            reasons[why] += 1
    if not fitting:
        return _unschedulable(api, pod, _message(total, reasons), call)
    node = min(fitting, key=lambda n: (attempt.cpu_share(n), n["metadata"]["name"]))
    node_name = node["metadata"]["name"]
    for claim, pv in attempt.bindings.get(node_name, []):
        binder.bind(api, claim, pv)
    _bind(api, pod, node_name, call)
    return None


def _bind(api: Api, pod: dict[str, Any], node_name: str, call: Any) -> None:
    """What POST pods/binding does, and the condition the scheduler then reports."""
    pods = api.resource("", "v1", "pods")
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    api.patch(pods, namespace, name, {"spec": {"nodeName": node_name}}, "application/merge-patch+json", call=call)
    conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now()})
    api.patch(pods, namespace, name, {"status": {"conditions": conditions}}, "application/merge-patch+json",
              "status", call)
    events.record(api, pod, "Scheduled", f"Successfully assigned {namespace}/{name} to {node_name}", COMPONENT)
