"""A create request's resources from a catalog profile: the profile fills in, explicit fields
override, an unknown profile is refused naming the field."""

import pytest

from akros_intake import InvalidError, check_profile, with_profile
from akros_msgs import Actor, CreateEnvironment, Resources, Role, Source
from akros_policy import Catalog, CatalogImage, ResourceProfile

CATALOG = Catalog(
    images={"pytorch": CatalogImage(image="registry.local/pytorch:1")},
    profiles={
        "gpu-single": ResourceProfile(cpu="8", memory="64Gi", gpus=1),
        "pinned": ResourceProfile(cpu="4", memory="16Gi", dedicated_cores=True),
        "ingest": ResourceProfile(cpu="2", memory="8Gi", gpus=1, underuse_exempt=True),
    },
)
ALICE = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)


def test_a_profile_supplies_every_resource_and_its_key_is_kept() -> None:
    fields = with_profile(CATALOG, "pinned", {"name": "lab", "image": "pytorch"})
    assert fields == {
        "name": "lab",
        "image": "pytorch",
        "cpu": "4",
        "memory": "16Gi",
        "gpus": 0,
        "dedicated_cores": True,
        "profile": "pinned",
    }


def test_fields_given_explicitly_override_the_profiles_values() -> None:
    given = {"cpu": "2", "gpus": 0, "dedicated_cores": False}
    fields = with_profile(CATALOG, "gpu-single", given)
    assert (fields["cpu"], fields["memory"], fields["gpus"]) == ("2", "64Gi", 0)
    assert fields["dedicated_cores"] is False
    assert fields["profile"] == "gpu-single"


@pytest.mark.parametrize(("field", "value"), [("cpu", "2500m"), ("memory", "9Gi"), ("gpus", 2)])
def test_an_exempt_profiles_resources_are_a_ceiling(field: str, value: object) -> None:
    with pytest.raises(InvalidError) as refused:
        with_profile(CATALOG, "ingest", {field: value})
    assert refused.value.field == field
    assert "exempt from under-use nudges" in refused.value.message


def test_an_exempt_profile_may_be_taken_smaller() -> None:
    fields = with_profile(CATALOG, "ingest", {"cpu": "1", "memory": "8Gi", "gpus": 0})
    assert (fields["cpu"], fields["memory"], fields["gpus"]) == ("1", "8Gi", 0)


def test_a_field_given_as_none_is_not_given() -> None:
    fields = with_profile(CATALOG, "gpu-single", {"cpu": None, "gpus": None, "gpu_model": None})
    assert (fields["cpu"], fields["gpus"]) == ("8", 1)
    assert "gpu_model" not in fields


def test_an_unknown_profile_is_refused_naming_the_field_and_the_choices() -> None:
    with pytest.raises(InvalidError) as refused:
        with_profile(CATALOG, "gpu-huge", {"cpu": "2", "memory": "8Gi"})
    assert refused.value.field == "profile"
    assert "'gpu-huge' is not in the catalog; choose one of: gpu-single, ingest, pinned" in str(
        refused.value
    )


def test_without_a_profile_cpu_and_memory_are_required() -> None:
    with pytest.raises(InvalidError) as refused:
        with_profile(CATALOG, None, {"memory": "8Gi"})
    assert refused.value.field == "cpu"
    with pytest.raises(InvalidError) as refused:
        with_profile(CATALOG, None, {"cpu": "2"})
    assert refused.value.field == "memory"


def test_without_a_profile_the_fields_are_taken_as_given() -> None:
    given = {"name": "lab", "cpu": "2", "memory": "8Gi"}
    assert with_profile(CATALOG, None, given) == given


def test_the_resolved_fields_make_a_command_that_names_its_profile() -> None:
    fields = with_profile(CATALOG, "gpu-single", {"name": "lab", "image": "pytorch"})
    command = CreateEnvironment(request_id="r", actor=ALICE, owner="alice", **fields)
    assert command.resources == Resources.of("8", "64Gi", 1)
    assert command.profile == "gpu-single"


def test_check_profile_accepts_no_profile_and_known_ones_only() -> None:
    assert check_profile(CATALOG, None) is None
    assert check_profile(CATALOG, "pinned") == CATALOG.profiles["pinned"]
    with pytest.raises(InvalidError):
        check_profile(Catalog(images=CATALOG.images), "pinned")
