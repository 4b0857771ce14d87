"""Who may act on what: pure decisions, no I/O."""

from akros_msgs import Actor, Role
from akros_policy import may_act_on


def is_admin(actor: Actor) -> bool:
    return actor.role is Role.ADMIN


def owner_for_create(actor: Actor, requested_owner: str | None) -> str | None:
    """Whose environment a create makes: the caller's own, or, for an admin, whoever they
    name. None when a researcher names someone else."""
    owner = requested_owner or actor.user_id
    return owner if may_act_on(actor, owner) else None


def owners_to_list(actor: Actor, user_filter: str | None) -> str | None:
    """Whose environments a listing shows: a researcher always their own (a filter naming
    someone else is refused by the caller through ``may_act_on``); an admin everybody's, or
    the filtered user's. None means everybody."""
    if is_admin(actor):
        return user_filter
    return actor.user_id
