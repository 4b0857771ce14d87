"""What a user typed after /akros, as a decision: pure, no I/O."""

from dataclasses import dataclass
from enum import StrEnum

from akros_msgs.names import MAX_PART_LENGTH, check_label


class Verb(StrEnum):
    CREATE = "create"
    LIST = "list"
    DELETE = "delete"
    STOP = "stop"
    START = "start"
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


@dataclass(frozen=True)
class Target:
    """The environment a command, button or form names: ``lab``, or ``bob/lab`` for someone
    else's."""

    name: str
    owner: str | None = None
    """None: the environment of whoever acts."""


def target_of(name: str, owner: str | None = None) -> Target | str:
    """The named environment, or why the names cannot be one (said to the user)."""
    for part in (owner, name) if owner else (name,):
        try:
            check_label(part, max_length=MAX_PART_LENGTH)
        except ValueError as error:
            return f"'{part}' is not a name: it {error}."
    return Target(name, owner)


def parse_target(text: str) -> Target | str:
    """``[owner/]name`` as typed after ``delete``, ``stop`` or ``start``, or carried by a
    button."""
    owner, _, name = text.rpartition("/")
    return target_of(name, owner or None)


def _targeted(verb: Verb, text: str) -> SlashCommand:
    target = parse_target(text)
    if isinstance(target, str):
        return SlashCommand(verb, problem=target)
    return SlashCommand(verb, name=target.name, owner=target.owner)


def parse_command(text: str) -> SlashCommand:
    """``create``, ``list``, ``usage``; ``delete``, ``stop`` or ``start`` ``[owner/]<name>``;
    anything else asks for help."""
    words = text.split()
    if len(words) == 1 and words[0].lower() in {Verb.CREATE, Verb.LIST, Verb.USAGE}:
        return SlashCommand(Verb(words[0].lower()))
    if len(words) == 2 and words[0].lower() in {Verb.DELETE, Verb.STOP, Verb.START}:
        return _targeted(Verb(words[0].lower()), words[1])
    return SlashCommand(Verb.HELP)
