"""Kubernetes resource quantities ("500m", "2Gi", "1e3"): parsing and the canonical forms."""

import re
from decimal import Decimal, InvalidOperation

# The grammar of k8s.io/apimachinery/pkg/api/resource: a signed decimal number followed by a
# binary-SI suffix, a decimal-SI suffix, or a decimal exponent.
QUANTITY_PATTERN = (
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)
_MULTIPLIERS = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(value: object) -> Decimal:
    """The quantity's value in base units (cores for cpu, bytes for memory, items for counts)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QuantityError(f"quantities must match the regular expression {QUANTITY_PATTERN!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value)
    if match is None:
        raise QuantityError(f"quantities must match the regular expression {QUANTITY_PATTERN!r}")
    suffix = match.group(3) or ""
    number = value[: len(value) - len(suffix)]
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number) * (Decimal(10) ** int(suffix[1:]))
        return Decimal(number) * _MULTIPLIERS[suffix]
    except (InvalidOperation, KeyError) as error:
        raise QuantityError(str(error)) from error


def millicores(value: object) -> int:
    """CPU in thousandths of a core, rounded up the way the kubelet rounds requests."""
    return int((parse_quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def whole_units(value: object) -> int:
    """Bytes for memory and storage, whole devices for extended resources; rounded up."""
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))


def format_bytes(count: int) -> str:
    """Kibibytes, as metrics-server reports memory."""
    return f"{count // 1024}Ki"
