"""Builders of the objects a running EKS cluster holds (bodies and the statuses controllers set)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

from opsbook.sandbox.kube.catalog import (
    CONTAINER_RUNTIME,
    EBS_CSI_DRIVER,
    EVICTION_HARD_MEMORY_MI,
    INSTANCE_TYPES,
    KERNEL,
    KUBELET_MEMORY_SHARE,
    NODE_IMAGE,
    ROOT_VOLUME_GI,
)

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes' rand.SafeEncodeString uses


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short_hash(*parts: str, length: int = 10) -> str:
    """A stable name suffix in the alphabet Kubernetes' controllers use (pod-template-hash, pod names)."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:length])


def revision_name(workload: str, template: dict[str, Any]) -> str:
    """The controller revision of a pod template: `<workload>-<hash of the template>` (controller-revision-hash)."""
    return f"{workload}-{short_hash(json.dumps(template, sort_keys=True, separators=(',', ':')))}"


def owner(kind: str, api_version: str, obj: Any) -> dict[str, Any]:
    """An ownerReference to a created object (a client model)."""
    return {"apiVersion": api_version, "kind": kind, "name": obj.metadata.name, "uid": obj.metadata.uid,
            "controller": True, "blockOwnerDeletion": True}


# --- nodes ---------------------------------------------------------------------------------------


def allocatable_cpu_millis(vcpu: int) -> int:
    """CPU the EKS AMI leaves to pods: 6% of the first core, 1% of the second, 0.5% of 3-4, 0.25% above."""
    reserved = 60 + (10 if vcpu > 1 else 0) + 5 * max(0, min(vcpu, 4) - 2) + 2.5 * max(0, vcpu - 4)
    return int(vcpu * 1000 - reserved)


def node(fact: dict[str, Any], region: str, kube_version: str) -> dict[str, Any]:
    """A Node as an EKS managed node group's kubelet registers it (status included)."""
    shape = INSTANCE_TYPES[fact["instance_type"]]
    memory_ki = int(shape.memory_gib * 1024 * 1024 * KUBELET_MEMORY_SHARE)
    reserved_memory_ki = (255 + 11 * shape.max_pods + EVICTION_HARD_MEMORY_MI) * 1024
    storage_ki = ROOT_VOLUME_GI * 1024 * 1024 - 12 * 1024  # the root filesystem's overhead
    stamp = now()
    labels = {
        "kubernetes.io/hostname": fact["name"],
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": shape.arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": shape.arch,
        "node.kubernetes.io/instance-type": fact["instance_type"],
        "beta.kubernetes.io/instance-type": fact["instance_type"],
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": fact["az"],
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": fact["az"],
        "topology.ebs.csi.aws.com/zone": fact["az"],
        "eks.amazonaws.com/nodegroup": fact["node_group"],
        "eks.amazonaws.com/capacityType": "ON_DEMAND",
        "eks.amazonaws.com/sourceLaunchTemplateVersion": "1",
        "k8s.io/cloud-provider-aws": hashlib.sha256(region.encode()).hexdigest()[:32],
    }
    conditions = [
        {"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": m,
         "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
        for t, r, m in (
            ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                       "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp,
                       "lastTransitionTime": stamp})
    return {
        "metadata": {
            "name": fact["name"],
            "labels": labels,
            "annotations": {"alpha.kubernetes.io/provided-node-ip": fact["private_ip"],
                            "node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"providerID": f"aws:///{fact['az']}/{fact['instance_id']}"},
        "status": {
            "capacity": {"cpu": str(shape.vcpu), "memory": f"{memory_ki}Ki", "pods": str(shape.max_pods),
                         "ephemeral-storage": f"{storage_ki}Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0"},
            "allocatable": {"cpu": f"{allocatable_cpu_millis(shape.vcpu)}m",
                            "memory": f"{memory_ki - reserved_memory_ki}Ki", "pods": str(shape.max_pods),
                            "ephemeral-storage": str(int(storage_ki * 1024 * 0.9)),
                            "hugepages-1Gi": "0", "hugepages-2Mi": "0"},
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": fact["private_ip"]},
                          {"type": "InternalDNS", "address": fact["name"]},
                          {"type": "Hostname", "address": fact["name"]}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": hashlib.sha256(fact["instance_id"].encode()).hexdigest()[:32],
                "systemUUID": "ec2" + hashlib.sha256(fact["name"].encode()).hexdigest()[3:32],
                "bootID": str(uuid.UUID(hashlib.sha256(fact["instance_id"].encode()).hexdigest()[:32])),
                "kernelVersion": KERNEL,
                "osImage": NODE_IMAGE,
                "containerRuntimeVersion": CONTAINER_RUNTIME,
                "kubeletVersion": f"v{kube_version}.8-eks-aeac579",
                "kubeProxyVersion": f"v{kube_version}.8-eks-aeac579",
                "operatingSystem": "linux",
                "architecture": shape.arch,
            },
        },
    }


# --- pods ----------------------------------------------------------------------------------------


def running_pod_status(pod: Any, node_ip: str, pod_ip: str) -> dict[str, Any]:
    """The status the kubelet reports for a pod whose containers all run and are ready."""
    stamp = now()
    containers = pod.spec.containers
    return {
        "phase": "Running",
        "conditions": [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
        ],
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": stamp,
        "qosClass": pod.status.qos_class,
        "containerStatuses": [
            {
                "name": c.name,
                "image": c.image,
                "imageID": f"{c.image.split(':')[0]}@sha256:{hashlib.sha256(c.image.encode()).hexdigest()}",
                "containerID": f"containerd://{hashlib.sha256((pod.metadata.uid + c.name).encode()).hexdigest()}",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": stamp}},
                "lastState": {},
            }
            for c in containers
        ],
    }


# --- volumes -------------------------------------------------------------------------------------


def pvc(name: str, namespace: str, labels: dict[str, str], size_gi: int, storage_class: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                 "volumeMode": "Filesystem", "resources": {"requests": {"storage": f"{size_gi}Gi"}}},
    }


def pv(claim: Any, volume: dict[str, Any], storage_class: str) -> dict[str, Any]:
    """The PersistentVolume the EBS CSI driver provisions for a claim, bound to it."""
    return {
        "metadata": {
            "name": f"pvc-{claim.metadata.uid}",
            "annotations": {"pv.kubernetes.io/provisioned-by": EBS_CSI_DRIVER,
                            "volume.kubernetes.io/provisioner-deletion-secret-name": "",
                            "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""},
            "finalizers": ["external-provisioner.volume.kubernetes.io/finalizer", "kubernetes.io/pv-protection"],
        },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": f"{volume['size_gi']}Gi"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": claim.metadata.name,
                         "namespace": claim.metadata.namespace, "uid": claim.metadata.uid,
                         "resourceVersion": claim.metadata.resource_version},
            "csi": {"driver": EBS_CSI_DRIVER, "fsType": "ext4", "volumeHandle": volume["volume_id"],
                    "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity":
                                         f"1700000000000-8081-{EBS_CSI_DRIVER}"}},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [volume["az"]]}]}]}},
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
        },
    }


def bound_claim_patch(pv_name: str, node_name: str) -> dict[str, Any]:
    """What the PV controller writes on a claim it binds (spec.volumeName and the binding annotations)."""
    return {
        "metadata": {"annotations": {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.beta.kubernetes.io/storage-provisioner": EBS_CSI_DRIVER,
            "volume.kubernetes.io/storage-provisioner": EBS_CSI_DRIVER,
            "volume.kubernetes.io/selected-node": node_name,
        }},
        "spec": {"volumeName": pv_name},
    }


def bound_claim_status(size_gi: int) -> dict[str, Any]:
    return {"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": f"{size_gi}Gi"}}}


# --- workload statuses ---------------------------------------------------------------------------


def unschedulable_pod_status(nodes: int) -> dict[str, Any]:
    """What the scheduler leaves on a pod no node can take."""
    return {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": None,
        "lastTransitionTime": now(),
        "message": f"0/{nodes} nodes are available: {nodes} Insufficient cpu or memory, or volume node affinity "
                   "conflict. preemption: 0/{nodes} nodes are available.".replace("{nodes}", str(nodes)),
    }]}


def deployment_status(replicas: int, ready: int, generation: int) -> dict[str, Any]:
    stamp = now()
    available = ready >= replicas - replicas // 4  # maxUnavailable 25%
    status: dict[str, Any] = {
        "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": ready, "availableReplicas": ready,
        "conditions": [
            {"type": "Available", "status": "True" if available else "False",
             "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if available
             else "Deployment does not have minimum availability.",
             "lastUpdateTime": stamp, "lastTransitionTime": stamp},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "ReplicaSet has successfully progressed.", "lastUpdateTime": stamp,
             "lastTransitionTime": stamp},
        ],
    }
    if ready:
        status["unavailableReplicas"] = replicas - ready
    if ready == replicas:
        status.pop("unavailableReplicas")
    return {"status": status}


def replicaset_status(replicas: int, ready: int, generation: int) -> dict[str, Any]:
    return {"status": {"observedGeneration": generation, "replicas": replicas, "fullyLabeledReplicas": replicas,
                       "readyReplicas": ready, "availableReplicas": ready}}


def statefulset_status(replicas: int, ready: int, generation: int, revision: str) -> dict[str, Any]:
    return {"status": {"observedGeneration": generation, "replicas": replicas, "readyReplicas": ready,
                       "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": ready,
                       "currentRevision": revision, "updateRevision": revision, "collisionCount": 0}}


def daemonset_status(nodes: int, ready: int, generation: int) -> dict[str, Any]:
    return {"status": {"observedGeneration": generation, "desiredNumberScheduled": nodes,
                       "currentNumberScheduled": nodes, "updatedNumberScheduled": nodes, "numberReady": ready,
                       "numberAvailable": ready, "numberMisscheduled": 0, "numberUnavailable": nodes - ready}}
