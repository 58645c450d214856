"""Checks of what a Velero restore brought back into the drill namespace.

- `restored_object_rows`: every object the backup holds of the source namespace is in the
  target namespace, except those Velero never restores, which are listed with the reason
  (`not_restored_reason`, as Velero v1.18 decides it):
  - kinds it refuses to restore: nodes, events, its own backups and restores, ...
    (pkg/controller/restore_controller.go `nonRestorableResources`);
  - pods whose phase is Succeeded or Failed, and Jobs with a completion time
    (pkg/restore/restore.go `isCompleted`), and mirror pods (`kubernetes.io/config.mirror`);
  - service-account token secrets named `<sa>-token-...` after a ServiceAccount of the
    namespace, which the cluster makes again (pkg/restore/actions/secret_action.go).
- `restored_volume_rows`: each claim becomes Bound (polled: the PV controller binds a
  restored claim to its restored PV in its own time) to a new PV whose EBS volume was made
  from the backup's snapshot of the source PV, is encrypted as that snapshot is, and
  carries the snapshot's tags (the AWS plugin copies them, `CreateVolumeFromSnapshot`).
- `wait_pods_ready`: every StatefulSet's pods are Ready.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from opsbook.drills.velero_api import fresh_discovery, pv_volume_id
from opsbook.drills.velero_verify import StoredBackup, describe_snapshots, row
from opsbook.formats.velero import TarItem

NON_RESTORABLE = frozenset({
    "nodes", "events", "events.events.k8s.io", "backups.velero.io", "restores.velero.io",
    "resticrepositories.velero.io", "csinodes.storage.k8s.io", "volumeattachments.storage.k8s.io",
    "backuprepositories.velero.io",
})
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
NAMED_SKIPS = 5  # more objects skipped for one reason are counted, not named


def not_restored_reason(item: TarItem, service_accounts: set[str]) -> str | None:
    """Why Velero does not restore this backed-up object, or None when it does."""
    obj, kind = item.obj, item.group_resource
    status = obj.get("status") or {}
    if kind in NON_RESTORABLE:
        return f"Velero never restores {kind}"
    if kind == "pods" and status.get("phase") in ("Succeeded", "Failed"):
        return f"a finished pod ({status['phase']})"
    if kind == "pods" and ((obj.get("metadata") or {}).get("annotations") or {}).get(MIRROR_POD_ANNOTATION):
        return "a mirror pod (the kubelet makes it)"
    if kind == "jobs.batch" and status.get("completionTime"):
        return f"a finished Job (completed {status['completionTime']})"
    if kind == "secrets" and obj.get("type") == SA_TOKEN_TYPE:
        owner = next((sa for sa in sorted(service_accounts) if item.name.startswith(f"{sa}-token-")), None)
        if owner is not None:
            return f"the token of ServiceAccount {owner} (the cluster makes it again)"
    return None


def _service_accounts(core: Any, stored: StoredBackup, source_ns: str, target_ns: str) -> set[str]:
    """The ServiceAccounts Velero's secret action sees: those restored into the target namespace."""
    names = {i.name for i in stored.items if i.group_resource == "serviceaccounts" and i.namespace == source_ns}
    try:
        names |= {sa.metadata.name for sa in core.list_namespaced_service_account(target_ns).items}
    except ApiException as exc:
        if exc.status != 404:
            raise
    return names


@dataclass
class Skipped:
    """A backed-up object Velero does not restore, and why."""

    object: str
    reason: str


def restored_object_rows(api_client: Any, stored: StoredBackup, source_ns: str,
                         target_ns: str) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Every object the backup holds of the source namespace exists in the target one (Velero's skips aside)."""
    with fresh_discovery(api_client) as dyn:
        return _rows_with(dyn, api_client, stored, source_ns, target_ns)


def _rows_with(dyn: Any, api_client: Any, stored: StoredBackup, source_ns: str,
               target_ns: str) -> tuple[list[dict[str, Any]], list[Skipped]]:
    accounts = _service_accounts(client.CoreV1Api(api_client), stored, source_ns, target_ns)
    rows, skipped = [], []
    for item in sorted((i for i in stored.items if i.namespace == source_ns), key=lambda i: (i.group_resource, i.name)):
        what = f"{item.obj.get('kind')}/{item.name}"
        reason = not_restored_reason(item, accounts)
        if reason is not None:
            skipped.append(Skipped(what, reason))
            continue
        try:
            res = dyn.resources.get(api_version=str(item.obj.get("apiVersion") or "v1"), kind=item.obj.get("kind"))
            res.get(name=item.name, namespace=target_ns)
            rows.append(row(f"restored {what}", True, f"in {target_ns}"))
        except ApiException as exc:
            rows.append(row(f"restored {what}", False, f"not in {target_ns} ({exc.status} {exc.reason})"))
        except Exception as exc:  # noqa: BLE001 - the kind itself is unknown to the cluster
            rows.append(row(f"restored {what}", False, f"cannot look it up: {exc}"))
    if skipped:
        rows.append(row("not restored, by Velero's rules", True, f"{len(skipped)}: {describe_skipped(skipped)}"))
    return rows, skipped


def describe_skipped(skipped: list[Skipped]) -> str:
    """One phrase per reason: the objects by name, or by count when there are many (a namespace's events)."""
    by_reason: dict[str, list[str]] = {}
    for s in skipped:
        by_reason.setdefault(s.reason, []).append(s.object)
    parts = []
    for reason, objects in by_reason.items():
        if len(objects) > NAMED_SKIPS:
            kinds = "/".join(sorted({o.split("/", 1)[0] for o in objects}))
            parts.append(f"{len(objects)} {kinds} objects ({reason})")
        else:
            parts.append(f"{', '.join(objects)} ({reason})")
    return "; ".join(parts)


# --- claims and volumes -----------------------------------------------------------------------


@dataclass
class RestoredVolume:
    claim: str
    pv: str
    volume_id: str
    snapshot_id: str


def wait_claims_bound(core: Any, namespace: str, claims: list[str], timeout_s: float,
                      poll_s: float) -> dict[str, Any]:
    """Claim name -> the claim as last read (None when absent), once each is Bound or the time is up."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    while True:
        for name in claims:
            try:
                seen[name] = core.read_namespaced_persistent_volume_claim(name, namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                seen[name] = None
        bound = all(c is not None and c.status and c.status.phase == "Bound" for c in seen.values())
        if bound or time.monotonic() >= deadline:
            return seen
        time.sleep(poll_s)


def restored_volume_rows(api_client: Any, ec2: Any, stored: StoredBackup, source_ns: str, target_ns: str,
                         timeout_s: float, poll_s: float) -> tuple[list[dict[str, Any]], list[RestoredVolume]]:
    """Each restored claim is Bound to a new PV whose EBS volume was made from the backup's snapshot."""
    core = client.CoreV1Api(api_client)
    source_claims = stored.claims(source_ns)
    claims = wait_claims_bound(core, target_ns, sorted(source_claims), timeout_s, poll_s)
    snapshots = stored.completed_snapshots()
    check = _VolumeCheck(core, ec2, snapshots, describe_snapshots(ec2, sorted(snapshots.values())), target_ns,
                         timeout_s)
    rows, volumes = [], []
    for name in sorted(source_claims):
        result, volume = check.claim(name, claims[name], source_claims[name])
        rows.append(result)
        if volume is not None:
            volumes.append(volume)
    if not source_claims:
        rows.append(row("volumes", True, f"the backup holds no claims of {source_ns}"))
    return rows, volumes


@dataclass
class _VolumeCheck:
    """What judging a restored claim needs: the clients, the backup's snapshots, where and how long."""

    core: Any
    ec2: Any
    snapshots: dict[str, str]  # source PV -> the backup's snapshot of it
    described: dict[str, dict[str, Any]]  # snapshot id -> EC2's description
    target_ns: str
    timeout_s: float

    def claim(self, name: str, claim: Any, source_pv: str) -> tuple[dict[str, Any], RestoredVolume | None]:
        check = f"volume of {name}"
        if claim is None:
            return row(check, False, f"claim not in {self.target_ns}"), None
        phase, pv_name = claim.status.phase if claim.status else None, claim.spec.volume_name
        if phase != "Bound" or not pv_name:
            return row(check, False, f"claim is {phase}, volume {pv_name or 'none'}, after {self.timeout_s:.0f}s"), None
        if pv_name == source_pv:
            return row(check, False, f"bound to the source's own PV {pv_name}: not a restored volume"), None
        volume_id = pv_volume_id(self.core.read_persistent_volume(pv_name))
        if not volume_id:
            return row(check, False, f"PV {pv_name} has no EBS volume"), None
        try:
            vol = self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
        except Exception as exc:  # noqa: BLE001 - a volume that cannot be read is a failing row, not a crash
            return row(check, False, f"EBS volume {volume_id} of PV {pv_name}: {exc}"), None
        want = self.snapshots.get(source_pv, "")
        made_from = vol.get("SnapshotId") or ""
        problems = _volume_problems(vol, made_from, want, self.described.get(want), source_pv)
        detail = f"Bound to {pv_name}, volume {volume_id} from {made_from or 'no snapshot'}"
        return (row(check, not problems, detail + (f" ({'; '.join(problems)})" if problems else "")),
                RestoredVolume(name, pv_name, volume_id, made_from))


def _volume_problems(vol: dict[str, Any], made_from: str, want: str, snap: dict[str, Any] | None,
                     source_pv: str) -> list[str]:
    if not want or made_from != want:
        return [f"the backup's snapshot of {source_pv} is {want or 'missing'}"]
    if snap is None:
        return [f"its snapshot {want} cannot be read to compare encryption and tags"]
    problems = []
    if bool(vol.get("Encrypted")) != bool(snap.get("Encrypted")):
        problems.append(f"Encrypted={vol.get('Encrypted')} but the snapshot's is {snap.get('Encrypted')}")
    tags = {t["Key"]: t["Value"] for t in vol.get("Tags", [])}
    snap_tags = {t["Key"]: t["Value"] for t in snap.get("Tags", [])}
    lost = sorted(k for k, v in snap_tags.items() if tags.get(k) != v)
    if lost:
        problems.append(f"the snapshot's tags {', '.join(lost)} were not carried over")
    return problems


# --- pods ---------------------------------------------------------------------------------------


def _pod_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])) if pod.status else False


def wait_pods_ready(api_client: Any, namespace: str, statefulsets: list[str], timeout_s: float,
                    poll_s: float = 1.0) -> list[dict[str, Any]]:
    """Wait until every StatefulSet's pods are Ready (replicas of them); a row per StatefulSet."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout_s
    pending = list(statefulsets)
    rows: dict[str, dict[str, Any]] = {}
    while True:
        for name in list(pending):
            try:
                sts = apps.read_namespaced_stateful_set(name, namespace)
            except ApiException as exc:
                rows[name] = row(f"pods of {name} Ready", False, f"StatefulSet not in {namespace} ({exc.status})")
                pending.remove(name)
                continue
            selector = ",".join(f"{k}={v}" for k, v in sorted((sts.spec.selector.match_labels or {}).items()))
            pods = core.list_namespaced_pod(namespace, label_selector=selector).items
            ready = sorted(p.metadata.name for p in pods if _pod_ready(p))
            want = sts.spec.replicas or 0
            rows[name] = row(f"pods of {name} Ready", len(ready) >= want,
                             f"{len(ready)}/{want} Ready" + (f": {', '.join(ready)}" if ready else ""))
            if len(ready) >= want:
                pending.remove(name)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    for name in pending:
        rows[name]["detail"] += f" after {timeout_s:.0f}s (timeout)"
    return [rows[n] for n in statefulsets]
