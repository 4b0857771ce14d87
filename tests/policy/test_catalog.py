"""The catalog is configuration: it loads from YAML and refuses what makes no sense."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from akros_policy import DEFAULT_CATALOG, Catalog, ResourceProfile, load_catalog


def test_a_catalog_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "images:\n  torch:\n    image: registry.local/torch:1\n"
        "profiles:\n  small:\n    cpu: '0.5'\n    memory: 2048Mi\n"
    )
    catalog = Catalog.from_file(path)
    assert catalog.images["torch"].image == "registry.local/torch:1"
    assert (catalog.profiles["small"].cpu, catalog.profiles["small"].memory) == ("500m", "2Gi")


def test_a_catalog_without_images_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one image"):
        Catalog(images={})


def test_the_default_catalog_offers_gpu_and_cpu_images() -> None:
    assert {"pytorch", "quant-cpu"} <= set(DEFAULT_CATALOG.images)


def test_the_exempt_profiles_are_those_the_catalog_marks_so() -> None:
    catalog = Catalog(
        images=DEFAULT_CATALOG.images,
        profiles={
            "batch": ResourceProfile(cpu="4", memory="8Gi", underuse_exempt=True),
            "small": ResourceProfile(cpu="2", memory="8Gi"),
        },
    )
    assert catalog.underuse_exempt_profiles() == {"batch"}
    assert DEFAULT_CATALOG.underuse_exempt_profiles() == frozenset()


def test_a_service_loads_its_catalog_file_or_else_the_built_in_one(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        "images:\n  torch:\n    image: registry.local/torch:1\n"
        "profiles:\n  batch: {cpu: '4', memory: 8Gi, underuse_exempt: true}\n"
    )
    assert load_catalog(None) is DEFAULT_CATALOG
    assert load_catalog(path).underuse_exempt_profiles() == {"batch"}
