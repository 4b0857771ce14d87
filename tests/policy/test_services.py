"""Host paths in a service spec: admins only, and only where the platform enables them."""

from akros_msgs import Actor, Role, Source
from akros_msgs.services import ServiceSpec
from akros_policy import SpecProblem, host_path_problem

ADMIN = Actor(user_id="root", source=Source.HTTP, role=Role.ADMIN)
RESEARCHER = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)
HOST_PATH_SPEC = ServiceSpec.model_validate(
    {
        "name": "logs",
        "image": "registry.local/shipper:1",
        "volumes": [
            {"name": "tmp", "mount_path": "/scratch", "source": "empty_dir"},
            {"name": "logs", "mount_path": "/logs", "source": "host_path", "ref": "/var/log"},
        ],
    }
)


def test_an_admin_may_mount_a_host_path_where_the_platform_enables_it() -> None:
    assert host_path_problem(HOST_PATH_SPEC, ADMIN, host_paths_enabled=True) is None


def test_a_researcher_may_never_mount_a_host_path_and_the_problem_names_the_volume() -> None:
    assert host_path_problem(HOST_PATH_SPEC, RESEARCHER, host_paths_enabled=True) == SpecProblem(
        "volumes.1.source", "only admins may mount a host path"
    )


def test_nobody_mounts_a_host_path_where_the_platform_disables_them() -> None:
    assert host_path_problem(HOST_PATH_SPEC, ADMIN, host_paths_enabled=False) == SpecProblem(
        "volumes.1.source", "host paths are disabled on this platform"
    )


def test_a_spec_without_host_paths_has_no_problem_for_anyone() -> None:
    spec = ServiceSpec(name="web", image="registry.local/web:1")

    assert host_path_problem(spec, RESEARCHER, host_paths_enabled=False) is None
