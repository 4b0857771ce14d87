"""The gateway's pure decisions and its configuration files, without Redis or HTTP."""

from akros_gateway.access import owner_for_create, owners_to_list
from akros_gateway.tokens import new_token, shown_part, token_digest
from akros_intake import is_same_request
from akros_msgs import Actor, Role, Source
from akros_policy import may_act_on
from akros_readmodel import RequestState, RequestView

ALICE = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)
ADMIN = Actor(user_id="root", source=Source.HTTP, role=Role.ADMIN)


def test_researchers_access_their_own_things_and_admins_everybodys() -> None:
    assert may_act_on(ALICE, "alice")
    assert not may_act_on(ALICE, "bob")
    assert may_act_on(ADMIN, "bob")


def test_only_admins_create_for_someone_else() -> None:
    assert owner_for_create(ALICE, None) == "alice"
    assert owner_for_create(ALICE, "alice") == "alice"
    assert owner_for_create(ALICE, "bob") is None
    assert owner_for_create(ADMIN, "bob") == "bob"
    assert owner_for_create(ADMIN, None) == "root"


def test_a_listing_shows_a_researcher_their_own_and_an_admin_all_or_the_filtered_user() -> None:
    assert owners_to_list(ALICE, None) == "alice"
    assert owners_to_list(ADMIN, None) is None
    assert owners_to_list(ADMIN, "bob") == "bob"


def _request(name: str, command_type: str = "create_environment") -> RequestView:
    return RequestView(
        request_id="r",
        state=RequestState.PENDING,
        command_type=command_type,
        actor="alice",
        owner="alice",
        name=name,
    )


def test_a_retry_is_the_same_command_on_the_same_object() -> None:
    assert is_same_request(_request("lab"), _request("lab"))
    assert not is_same_request(_request("lab"), _request("other"))
    assert not is_same_request(_request("lab"), _request("lab", "delete_environment"))


def test_tokens_are_long_random_and_only_their_prefix_is_shown() -> None:
    token = new_token()
    assert token.startswith("akros_")
    assert len(token) >= 6 + 43
    assert new_token() != token
    assert shown_part(token) == token[:14]
    assert token_digest(token) == token_digest(token)
    assert token not in token_digest(token)
