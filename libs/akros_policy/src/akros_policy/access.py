"""Who may act on what: researchers on their own things, admins and the system on all."""

from akros_msgs import Actor, Role


def may_act_on(actor: Actor, owner: str) -> bool:
    return actor.role in {Role.ADMIN, Role.SYSTEM} or actor.user_id == owner
