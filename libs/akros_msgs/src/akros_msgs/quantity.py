"""Kubernetes resource quantities ("500m", "4Gi", "2"), parsed exactly and normalised.

The grammar is the API server's: a signed decimal number followed by a binary-SI suffix
(Ki Mi Gi Ti Pi Ei), a decimal-SI suffix (n u m "" k M G T P E) or a decimal exponent (e3).
Arithmetic uses Decimal so that "0.1" CPU is exactly 100 millicores.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exponent>[eE][+-]?\d+)|(?P<decimal>[numkMGTPE]?))$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity, or not one allowed where it is used."""


def parse_quantity(text: str | int | float | Decimal) -> Decimal:
    """The exact value of a quantity: parse_quantity("1.5Gi") == 1610612736."""
    if isinstance(text, bool):
        raise QuantityError("a quantity cannot be a boolean")
    if isinstance(text, int | Decimal):
        return Decimal(text)
    if isinstance(text, float):
        return Decimal(repr(text))
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise QuantityError(f"{text!r} is not a quantity (examples: 500m, 2, 4Gi, 512Mi)")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as error:  # the regex admits only valid decimals; kept for safety
        raise QuantityError(f"{text!r} is not a quantity") from error
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["exponent"]:
        return number.scaleb(int(match["exponent"][1:]))
    return number * _DECIMAL[match["decimal"] or ""]


def cpu_millicores(text: str | int | float | Decimal) -> int:
    """CPU in whole millicores, the API server's smallest CPU unit; finer values round up."""
    value = parse_quantity(text) * 1000
    millis = int(value.to_integral_value(rounding="ROUND_CEILING"))
    if millis < 0:
        raise QuantityError("CPU cannot be negative")
    return millis


def memory_bytes(text: str | int | float | Decimal) -> int:
    """Memory (or storage) in whole bytes; fractional bytes round up as the API server does."""
    value = parse_quantity(text)
    count = int(value.to_integral_value(rounding="ROUND_CEILING"))
    if count < 0:
        raise QuantityError("memory cannot be negative")
    return count


def format_cpu(millis: int) -> str:
    """The canonical CPU form: whole cores as "2", anything finer as "500m"."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_memory(count: int) -> str:
    """The canonical memory form: the largest binary suffix that divides exactly, else bytes."""
    for suffix, factor in reversed(_BINARY.items()):
        if count and count % factor == 0:
            return f"{count // factor}{suffix}"
    return str(count)


def _normalise_cpu(value: object) -> str:
    if not isinstance(value, str | int | float | Decimal):
        raise QuantityError("a CPU quantity is a string such as '500m' or '2', or a number")
    return format_cpu(cpu_millicores(value))


def _normalise_memory(value: object) -> str:
    if not isinstance(value, str | int | float | Decimal):
        raise QuantityError("a memory quantity is a string such as '4Gi' or '512Mi', or a number")
    return format_memory(memory_bytes(value))


def _positive(value: str) -> str:
    if parse_quantity(value) <= 0:
        raise QuantityError("must be greater than zero")
    return value


CpuQuantity = Annotated[str, BeforeValidator(_normalise_cpu), PlainSerializer(str)]
"""A CPU quantity, normalised on validation: "0.5" and "500m" both become "500m"."""

MemoryQuantity = Annotated[str, BeforeValidator(_normalise_memory), PlainSerializer(str)]
"""A memory or storage quantity, normalised on validation: "4096Mi" becomes "4Gi"."""

PositiveCpu = Annotated[CpuQuantity, AfterValidator(_positive)]
PositiveMemory = Annotated[MemoryQuantity, AfterValidator(_positive)]
