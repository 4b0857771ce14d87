"""What a user typed after /akros, as a decision: pure, no I/O."""

from dataclasses import dataclass
from enum import StrEnum


class Verb(StrEnum):
    CREATE = "create"
    LIST = "list"
    DELETE = "delete"
    USAGE = "usage"
    HELP = "help"


@dataclass(frozen=True)
class SlashCommand:
    verb: Verb
    name: str | None = None


def parse_command(text: str) -> SlashCommand:
    """``create``, ``list``, ``delete <name>``, ``usage``; anything else asks for help."""
    words = text.split()
    if len(words) == 1 and words[0].lower() in {Verb.CREATE, Verb.LIST, Verb.USAGE}:
        return SlashCommand(Verb(words[0].lower()))
    if len(words) == 2 and words[0].lower() == Verb.DELETE:
        return SlashCommand(Verb.DELETE, name=words[1])
    return SlashCommand(Verb.HELP)
