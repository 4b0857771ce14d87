"""Who a Slack user is on the platform: pure decisions, no I/O."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from akros_msgs import Actor, Role, Source
from akros_msgs.names import UserId

_USER_MAP = TypeAdapter(dict[str, UserId])


def load_users_file(path: Path) -> dict[str, str]:
    """A YAML mapping of Slack user id -> platform user; errors name the bad entry."""
    return _USER_MAP.validate_python(yaml.safe_load(path.read_text()) or {})


@dataclass(frozen=True)
class Directory:
    """Slack user ids mapped to platform users, and which Slack users are admins."""

    users: Mapping[str, str]
    admins: frozenset[str] = field(default_factory=frozenset)

    def actor(self, slack_user: str) -> Actor | None:
        """The platform identity of ``slack_user``; None for someone not mapped to a user."""
        user_id = self.users.get(slack_user)
        if user_id is None:
            return None
        role = Role.ADMIN if slack_user in self.admins else Role.RESEARCHER
        return Actor(user_id=user_id, source=Source.SLACK, role=role)

    def slack_user_of(self, platform_user: str) -> str | None:
        """Whom to tell in Slack about ``platform_user``'s environments."""
        return next((s for s, user in self.users.items() if user == platform_user), None)


def channel_allowed(allowed: frozenset[str], channel_id: str) -> bool:
    """Commands are taken anywhere unless channels are configured; then only there."""
    return not allowed or channel_id in allowed
