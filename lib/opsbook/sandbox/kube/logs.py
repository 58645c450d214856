"""pods/log: the text a container wrote, as the kubelet serves it through the API server.

No process runs in the sandbox: what an emulated container "writes" is what the emulated
runtime did with it (started from which image, with which command), so `kubectl logs` has
real lines to select from. The query follows k8s.io/api core/v1 PodLogOptions and the
kubelet's log handling (pkg/kubelet/kuberuntime/logs): `container` (required when the pod has
several), `previous` (the last terminated instance), `tailLines`, `sinceSeconds`/`sinceTime`,
`limitBytes`, `timestamps` (each line prefixed with its RFC 3339 nanosecond time); the answer
is text/plain. Errors are the API server's 400s for a missing, unknown or not-yet-started
container, and for `previous` without a terminated instance. `follow` returns what is there
and ends (nothing more will be written).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from opsbook.sandbox.kube.errors import ApiError


def _nano(moment: dt.datetime) -> str:
    """RFC 3339 with nanoseconds, as the kubelet stamps log lines."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass
class Instance:
    """One run of one container: its lines with their times."""

    lines: list[tuple[dt.datetime, str]] = field(default_factory=list)


class PodLogs:
    """The log of every container instance, by pod uid and container name (latest instance last)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], list[Instance]] = {}

    def started(self, pod: dict[str, Any], container: dict[str, Any], node: str,
                stamp: dt.datetime | None = None) -> None:
        """A container started: what the runtime wrote for it."""
        stamp = stamp or dt.datetime.now(dt.UTC)
        lines = [f'sandbox runtime: container "{container["name"]}" of pod {pod["metadata"]["namespace"]}/'
                 f'{pod["metadata"]["name"]} started on node {node} from image {container.get("image", "")}']
        command = [*(container.get("command") or []), *(container.get("args") or [])]
        if command:
            lines.append(f"sandbox runtime: command {' '.join(command)}")
        lines.append("sandbox runtime: no process runs in the sandbox; this is all the container will log")
        with self._lock:
            runs = self._runs.setdefault((pod["metadata"]["uid"], container["name"]), [])
            runs.append(Instance([(stamp, line) for line in lines]))

    def forget(self, uid: str) -> None:
        with self._lock:
            for key in [k for k in self._runs if k[0] == uid]:
                del self._runs[key]

    def instances(self, uid: str, container: str) -> list[Instance]:
        with self._lock:
            return list(self._runs.get((uid, container), []))


def _container(pod: dict[str, Any], wanted: str | None) -> str:
    spec = pod.get("spec") or {}
    names = [c["name"] for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]]
    name = pod["metadata"]["name"]
    if not wanted:
        regular = [c["name"] for c in spec.get("containers") or []]
        if len(regular) != 1:
            raise ApiError(400, f"a container name must be specified for pod {name}, choose one of: "
                                f"[{' '.join(regular)}]")
        return regular[0]
    if wanted not in names:
        raise ApiError(400, f"container {wanted} is not valid for pod {name}")
    return wanted


def _select(lines: list[tuple[dt.datetime, str]], query: dict[str, str]) -> list[tuple[dt.datetime, str]]:
    since = None
    if query.get("sinceSeconds"):
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(query["sinceSeconds"]))
    elif query.get("sinceTime"):
        since = dt.datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
    if since is not None:
        lines = [line for line in lines if line[0] >= since]
    if query.get("tailLines") not in (None, ""):
        tail = int(query["tailLines"])
        lines = lines[-tail:] if tail > 0 else []
    return lines


def _running_before(logs: PodLogs, pod: dict[str, Any], container: str) -> list[Instance]:
    """A container already running when the kubelets came up (the seeded cluster) has its start logged too."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    running = next((s["state"]["running"] for s in statuses
                    if s.get("name") == container and (s.get("state") or {}).get("running")), None)
    spec = next((c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == container), None)
    if running is None or spec is None:
        return []
    started = running.get("startedAt")
    stamp = dt.datetime.fromisoformat(started.replace("Z", "+00:00")) if started else None
    logs.started(pod, spec, (pod.get("spec") or {}).get("nodeName", ""), stamp)
    return logs.instances(pod["metadata"]["uid"], container)


def read(logs: PodLogs, pod: dict[str, Any], query: dict[str, str]) -> str:
    """The text of GET .../pods/<name>/log?<query>."""
    container = _container(pod, query.get("container"))
    name = pod["metadata"]["name"]
    instances = logs.instances(pod["metadata"]["uid"], container) or _running_before(logs, pod, container)
    if query.get("previous") in ("true", "1"):
        if len(instances) < 2:
            raise ApiError(400, f'previous terminated container "{container}" in pod "{name}" not found')
        instance = instances[-2]
    elif instances:
        instance = instances[-1]
    else:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        waiting = next((s.get("state", {}).get("waiting") for s in statuses if s.get("name") == container), None)
        reason = (waiting or {}).get("reason") or "ContainerCreating"
        raise ApiError(400, f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    chosen = _select(instance.lines, query)
    stamps = query.get("timestamps") in ("true", "1")
    text = "".join(f"{_nano(t)} {line}\n" if stamps else f"{line}\n" for t, line in chosen)
    if query.get("limitBytes"):
        text = text.encode()[:int(query["limitBytes"])].decode(errors="ignore")
    return text
