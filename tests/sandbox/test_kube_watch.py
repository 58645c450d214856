"""Watches on the Kubernetes API server emulator, through kubernetes.watch.Watch."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def cm(name: str, labels: dict | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data={"v": "1"})


def test_watch_returns_when_timeout_passes(core, ns):
    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5, elapsed
    # without a resourceVersion the watch starts with the current state (the default service account's
    # namespace has no config maps, so nothing)
    assert events == []


def test_watch_streams_changes_from_a_resource_version(core, ns):
    listed = core.list_namespaced_config_map(ns)

    def changes() -> None:
        time.sleep(0.3)
        core.create_namespaced_config_map(ns, cm("a"))
        core.patch_namespaced_config_map("a", ns, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("a", ns)

    writer = threading.Thread(target=changes)
    writer.start()
    seen = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, ns,
                                      resource_version=listed.metadata.resource_version, timeout_seconds=3):
        seen.append((event["type"], event["object"].metadata.name, (event["object"].data or {}).get("v")))
        if event["type"] == "DELETED":
            break
    writer.join()
    assert seen == [("ADDED", "a", "1"), ("MODIFIED", "a", "2"), ("DELETED", "a", "2")]
    assert isinstance(event["object"], client.V1ConfigMap)


def test_watch_without_resource_version_lists_first(core, ns):
    core.create_namespaced_config_map(ns, cm("existing"))
    events = list(watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "existing")]


def test_watch_replays_history_after_an_old_resource_version(core, ns):
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    for name in ("x", "y"):
        core.create_namespaced_config_map(ns, cm(name))
    events = list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=start,
                                       timeout_seconds=1))
    assert [e["object"].metadata.name for e in events] == ["x", "y"]
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions) and versions[0] > int(start)


def test_watch_honours_label_selector_transitions(core, ns):
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, cm("m", labels={"role": "other"}))
    core.patch_namespaced_config_map("m", ns, {"metadata": {"labels": {"role": "db"}}})  # enters the selection
    core.patch_namespaced_config_map("m", ns, {"data": {"v": "3"}})
    core.patch_namespaced_config_map("m", ns, {"metadata": {"labels": {"role": "web"}}})  # leaves it
    events = list(watch.Watch().stream(core.list_namespaced_config_map, ns, label_selector="role=db",
                                       resource_version=start, timeout_seconds=1))
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_across_namespaces_and_of_namespaces(core, ns):
    start = core.list_namespace().metadata.resource_version
    other = f"w-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    core.create_namespaced_config_map(other, cm("there"))
    core.create_namespaced_config_map(ns, cm("here"))
    cms = list(watch.Watch().stream(core.list_config_map_for_all_namespaces, resource_version=start,
                                    timeout_seconds=1))
    mine = {(e["object"].metadata.namespace, e["object"].metadata.name) for e in cms
            if e["object"].metadata.namespace in (ns, other)}  # earlier tests' namespaces may still be going
    assert mine == {(other, "there"), (ns, "here")}
    core.delete_namespace(other)
    nss = list(watch.Watch().stream(core.list_namespace, resource_version=start, timeout_seconds=1))
    kinds = [(e["type"], e["object"].metadata.name) for e in nss if e["object"].metadata.name == other]
    assert kinds[0] == ("ADDED", other) and kinds[-1] == ("DELETED", other)


def test_watch_with_bad_resource_version_is_400(core, ns):
    with pytest.raises(ApiException) as info:
        list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version="abc", timeout_seconds=1))
    assert info.value.status == 400
