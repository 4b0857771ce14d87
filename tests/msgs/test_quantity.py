"""Kubernetes quantities parse exactly and normalise to one canonical form."""

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from akros_msgs.quantity import (
    CpuQuantity,
    MemoryQuantity,
    QuantityError,
    cpu_millicores,
    format_memory,
    memory_bytes,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", Decimal(2)),
        ("500m", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        ("4Gi", Decimal(4 * 2**30)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("100u", Decimal("0.0001")),
        (".5", Decimal("0.5")),
    ],
)
def test_quantities_parse_to_their_exact_value(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "4GB", "1.2.3", "Gi", "4 Gi", "--1", "1Ki2"])
def test_malformed_quantities_are_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_cpu_rounds_up_to_whole_millicores() -> None:
    assert cpu_millicores("0.0001") == 1
    assert cpu_millicores("2") == 2000


def test_memory_formats_with_the_largest_exact_binary_suffix() -> None:
    assert format_memory(memory_bytes("4096Mi")) == "4Gi"
    assert format_memory(memory_bytes("1.5Gi")) == "1536Mi"
    assert format_memory(memory_bytes("1000")) == "1000"


class _Request(BaseModel):
    cpu: CpuQuantity
    memory: MemoryQuantity


def test_models_normalise_cpu_and_memory_on_validation() -> None:
    request = _Request(cpu="0.5", memory="2048Mi")
    assert (request.cpu, request.memory) == ("500m", "2Gi")
    assert _Request(cpu=2, memory="1G").cpu == "2"


def test_a_bad_quantity_in_a_model_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        _Request(cpu="1", memory="much")
    assert caught.value.errors()[0]["loc"] == ("memory",)
