"""What a user typed after /akros, as a decision: pure, no I/O."""

from dataclasses import dataclass
from enum import StrEnum

from akros_msgs.names import MAX_PART_LENGTH, check_label


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
    owner: str | None = None
    """Whose environment, when an admin names someone else's: ``delete bob/lab``."""
    problem: str | None = None
    """Why the text cannot be acted on, said to the user instead of doing anything."""


def _delete(target: str) -> SlashCommand:
    owner, _, name = target.rpartition("/")
    for part in filter(None, (owner, name)):
        try:
            check_label(part, max_length=MAX_PART_LENGTH)
        except ValueError as error:
            return SlashCommand(Verb.DELETE, problem=f"'{part}' is not a name: it {error}.")
    return SlashCommand(Verb.DELETE, name=name, owner=owner or None)


def parse_command(text: str) -> SlashCommand:
    """``create``, ``list``, ``delete [owner/]<name>``, ``usage``; anything else asks for
    help."""
    words = text.split()
    if len(words) == 1 and words[0].lower() in {Verb.CREATE, Verb.LIST, Verb.USAGE}:
        return SlashCommand(Verb(words[0].lower()))
    if len(words) == 2 and words[0].lower() == Verb.DELETE:
        return _delete(words[1])
    return SlashCommand(Verb.HELP)
