"""A volume's node affinity read as the scheduler reads it."""

from akros_policy.placement import claim_volume_name, node_matches, nodes_allowed

HOSTNAME = "kubernetes.io/hostname"


def _pinned(node: str) -> list[dict[str, object]]:
    return [{"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": [node]}]}]


def test_a_local_volume_admits_only_the_node_it_is_stored_on() -> None:
    nodes = [("cpu-1", {HOSTNAME: "cpu-1"}), ("gpu-1", {HOSTNAME: "gpu-1"})]
    assert nodes_allowed([_pinned("cpu-1")], nodes) == {"cpu-1"}
    assert nodes_allowed([], nodes) == {"cpu-1", "gpu-1"}


def test_terms_are_ored_and_requirements_anded_and_an_empty_term_matches_nothing() -> None:
    zone_a = {"key": "zone", "operator": "In", "values": ["a"]}
    no_gpu = {"key": "gpu", "operator": "DoesNotExist"}
    labels = {"zone": "a", "cores": "64"}
    assert node_matches([{"matchExpressions": [zone_a, no_gpu]}], "n", labels)
    assert not node_matches([{"matchExpressions": [zone_a, no_gpu]}], "n", {**labels, "gpu": "1"})
    assert node_matches([{}, {"matchFields": [{"key": "metadata.name", "operator": "In",
                                               "values": ["n"]}]}], "n", {})  # fmt: skip
    assert not node_matches([{}], "n", labels)
    many = {"key": "cores", "operator": "Gt", "values": ["32"]}
    assert node_matches([{"matchExpressions": [many]}], "n", labels)
    assert not node_matches([{"matchExpressions": [{**many, "operator": "Lt"}]}], "n", labels)


def test_only_a_bound_claim_names_its_volume() -> None:
    bound = {"spec": {"volumeName": "pvc-1"}, "status": {"phase": "Bound"}}
    assert claim_volume_name(bound) == "pvc-1"
    assert claim_volume_name({"spec": {}, "status": {"phase": "Pending"}}) is None
