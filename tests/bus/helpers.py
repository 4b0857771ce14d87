"""Building blocks for backbone tests."""

import redis

from akros_msgs import Actor, CreateEnvironment, Role, Source

ALICE = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)


def create_command(request_id: str, name: str) -> CreateEnvironment:
    return CreateEnvironment(
        request_id=request_id,
        actor=ALICE,
        owner="alice",
        name=name,
        image="pytorch",
        cpu="1",
        memory="1Gi",
    )


def counter(client: "redis.Redis", key: str) -> int:
    value = client.get(key)
    return int(value) if value is not None else 0
