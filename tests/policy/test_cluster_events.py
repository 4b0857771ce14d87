"""The cluster's Events in a researcher's words, and why an environment is pending."""

import pytest

from akros_policy.cluster_events import (
    NOTHING_YET,
    ClusterEvent,
    EnvironmentHistory,
    belongs_to_workload,
    in_words,
    oldest_first,
    why_pending,
)


@pytest.mark.parametrize(
    ("reason", "message", "words"),
    [
        (
            "FailedScheduling",
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            "waiting for a GPU: no node has one free",
        ),
        (
            "FailedScheduling",
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are "
            "available: 3 No preemption victims found for incoming pod.",
            "waiting for a GPU: no node has one free",
        ),
        (
            "FailedScheduling",
            "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu.",
            "waiting for a GPU: of 3 nodes, 1 has too little CPU free, 2 have no GPU free",
        ),
        (
            "FailedScheduling",
            "0/5 nodes are available: 5 Insufficient memory.",
            "waiting for memory: no node has enough free",
        ),
        (
            "FailedScheduling",
            "0/4 nodes are available: 1 node(s) had untolerated taint {gpu: true}, "
            "3 node(s) didn't match Pod's node affinity/selector.",
            "waiting for a node it may use: of 4 nodes, 1 is reserved for other work, "
            "3 are of another kind",
        ),
        (
            "FailedScheduling",
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had volume node affinity "
            "conflict.",
            "waiting for CPU: of 2 nodes, 1 has too little CPU free, "
            "1 is not where its volume is stored",
        ),
        (
            "FailedScheduling",
            "0/4 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
            "{nvidia.com/gpu: present}, 1 node(s) had untolerated taint {CriticalAddonsOnly: "
            "true}.",
            "waiting for CPU: of 4 nodes, 1 has too little CPU free, 3 are reserved for other work",
        ),
        (
            "FailedScheduling",
            "pod has unbound immediate PersistentVolumeClaims",
            "waiting for its volume to be created",
        ),
        (
            "FailedScheduling",
            "something the scheduler never said before",
            "waiting for a node: something the scheduler never said before",
        ),
        (
            "Scheduled",
            "Successfully assigned akros-envs/alice-nb-5d9f-x2x4q to gpu-node-2",
            "placed on node gpu-node-2",
        ),
        (
            "Pulling",
            'Pulling image "jupyter/scipy:2024"',
            "downloading the image jupyter/scipy:2024",
        ),
        (
            "Pulled",
            'Successfully pulled image "jupyter/scipy:2024" in 1m2.5s (1m2.5s including '
            "waiting). Image size: 200000000 bytes.",
            "downloaded the image jupyter/scipy:2024 in 1m2.5s",
        ),
        (
            "Pulled",
            'Container image "jupyter/scipy:2024" already present on machine',
            "the image jupyter/scipy:2024 is already on its node",
        ),
        (
            "Failed",
            'Failed to pull image "registry.example/nosuch:1": failed to pull and unpack image '
            '"registry.example/nosuch:1": failed to resolve reference "registry.example/nosuch:1":'
            " registry.example: not found",
            "the image registry.example/nosuch:1 does not exist: check its name",
        ),
        ("Failed", "Error: ImagePullBackOff", "its image could not be downloaded"),
        (
            "BackOff",
            'Back-off pulling image "registry.example/flaky:2"',
            "waiting a while before trying to download the image registry.example/flaky:2 again",
        ),
        (
            "BackOff",
            "Back-off restarting failed container main in pod nb_akros-envs(uid)",
            "its program stopped with an error; it is restarted after a pause (see its logs)",
        ),
        (
            "Preempted",
            "Preempted by pod 1234-abcd on node gpu-node-1",
            "stopped on node gpu-node-1 to make room for higher-priority work; it is placed again",
        ),
        ("Killing", "Stopping container main", "being stopped"),
        ("SomethingNew", "a message", "SomethingNew: a message"),
    ],
)
def test_an_event_in_words(reason: str, message: str, words: str) -> None:
    assert in_words(reason, message) == words


def _event(at: str, reason: str, message: str = "", kind: str = "Pod") -> ClusterEvent:
    return ClusterEvent(at, kind, "nb-1", reason, message, warning=False)


def test_pending_says_the_newest_thing_that_explains_the_wait() -> None:
    events = [
        _event(
            "2026-12-07T10:00:02Z",
            "FailedScheduling",
            "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        ),
        _event(
            "2026-12-07T10:00:00Z",
            "ScalingReplicaSet",
            "Scaled up replica set nb to 1",
            "Deployment",
        ),
    ]
    assert why_pending(events) == "waiting for a GPU: no node has one free"
    # Its volume's claim keeps saying it waits for a pod: the pod's reason stays the answer.
    claim = _event("2026-12-07T10:00:09Z", "WaitForFirstConsumer", "waiting for first consumer")
    assert why_pending([*events, claim]) == "waiting for a GPU: no node has one free"
    events.append(_event("2026-12-07T10:05:00Z", "Scheduled", "Successfully assigned a/nb-1 to n2"))
    events.append(_event("2026-12-07T10:05:01Z", "Pulling", 'Pulling image "big:1"'))
    assert why_pending(events) == "downloading the image big:1"
    events.append(_event("2026-12-07T10:06:00Z", "Created", "Created container: main"))
    events.append(_event("2026-12-07T10:06:00Z", "Started", "Started container main"))
    assert why_pending(events) == "its program started; it is not answering yet"


def test_pending_says_what_was_said_about_the_pod_that_waits_not_about_one_that_is_gone() -> None:
    old = ClusterEvent("2026-12-07T10:00:00Z", "Pod", "nb-6b7-aaaaa", "Killing", "", False)
    new = ClusterEvent(
        "2026-12-07T09:59:59.500000Z",
        "Pod",
        "nb-6b7-bbbbb",
        "FailedScheduling",
        "0/1 nodes are available: 1 Insufficient cpu.",
        True,
    )
    history = EnvironmentHistory([old, new], frozenset({("Pod", "nb-6b7-bbbbb")}))
    assert history.why_pending() == "waiting for CPU: no node has enough free"
    assert why_pending([old, new]) == "being stopped"  # without knowing which pod is gone


def test_events_sort_by_the_second_and_within_one_in_the_api_servers_order() -> None:
    # The scheduler's microseconds and the kubelet's whole seconds cannot be compared finer.
    scheduled = ClusterEvent("2026-12-07T10:00:05.900000Z", "Pod", "p", "Scheduled", "", False)
    pulled = ClusterEvent("2026-12-07T10:00:05Z", "Pod", "p", "Pulled", "", False)
    earlier = ClusterEvent("2026-12-07T10:00:04.100000Z", "Pod", "p", "Created", "", False)
    ordered = oldest_first([scheduled, pulled, earlier])
    assert [e.reason for e in ordered] == ["Created", "Scheduled", "Pulled"]


def test_pending_with_no_events_says_the_cluster_said_nothing() -> None:
    assert why_pending([]) == NOTHING_YET
    only_noise = [_event("2026-12-07T10:00:00Z", "SuccessfulCreate", "Created pod: nb-1")]
    assert why_pending(only_noise) == NOTHING_YET


def test_events_sort_by_time_whichever_reporter_wrote_them() -> None:
    legacy = {
        "involvedObject": {"kind": "Pod", "name": "nb-1"},
        "reason": "Pulling",
        "message": 'Pulling image "x"',
        "type": "Normal",
        "lastTimestamp": "2026-12-07T10:00:05Z",
        "count": 2,
    }
    scheduler = {
        "involvedObject": {"kind": "Pod", "name": "nb-1"},
        "reason": "FailedScheduling",
        "message": "0/1 nodes are available: 1 Insufficient cpu.",
        "type": "Warning",
        "lastTimestamp": None,
        "eventTime": "2026-12-07T10:00:01.000000Z",
    }
    ordered = oldest_first([ClusterEvent.of(legacy), ClusterEvent.of(scheduler)])
    assert [e.reason for e in ordered] == ["FailedScheduling", "Pulling"]
    assert ordered[0].warning
    assert not ordered[1].warning
    assert ordered[1].count == 2


def test_an_event_belongs_to_the_environment_by_its_objects_or_its_workloads_pods() -> None:
    objects = {("Pod", "alice-nb-6b7-abcde"), ("PersistentVolumeClaim", "alice-nb-work")}

    def about(kind: str, name: str) -> dict[str, object]:
        return {"involvedObject": {"kind": kind, "name": name}}

    assert belongs_to_workload(
        about("PersistentVolumeClaim", "alice-nb-work"), objects, ["alice-nb"]
    )
    # A pod preempted and gone since: still one of the workload's.
    assert belongs_to_workload(about("Pod", "alice-nb-6b7-zzzzz"), objects, ["alice-nb"])
    assert not belongs_to_workload(about("Pod", "alice-nbx-6b7-zzzzz"), objects, ["alice-nb"])
    assert not belongs_to_workload(about("Pod", "bob-nb-6b7-zzzzz"), objects, ["alice-nb"])
    # Another environment whose name begins with this one's: its pods have more parts.
    assert not belongs_to_workload(about("Pod", "alice-nb-2-6b7-zzzzz"), objects, ["alice-nb"])
    assert belongs_to_workload(about("ReplicaSet", "alice-nb-6b7"), objects, ["alice-nb"])
    assert not belongs_to_workload(about("ReplicaSet", "alice-nb-2-6b7"), objects, ["alice-nb"])
    assert not belongs_to_workload(about("Node", "alice-nb-1"), objects, ["alice-nb"])
