"""The Slack app's pure decisions: what was typed, what the form says, who is who, who may do
what."""

from pathlib import Path

import pytest
from pydantic import SecretStr

from akros_msgs import Actor, CreateEnvironment, Resources, Role, Source
from akros_slack import access, forms
from akros_slack.commands import SlashCommand, Target, Verb, parse_command, parse_target
from akros_slack.identity import Directory, channel_allowed
from akros_slack.main import directory_of
from akros_slack.settings import SlackMode, SlackSettings

ALICE = Actor(user_id="alice", source=Source.SLACK, role=Role.RESEARCHER)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("create", SlashCommand(Verb.CREATE)),
        ("  LIST ", SlashCommand(Verb.LIST)),
        ("delete lab", SlashCommand(Verb.DELETE, name="lab")),
        ("delete bob/lab", SlashCommand(Verb.DELETE, name="lab", owner="bob")),
        ("stop lab", SlashCommand(Verb.STOP, name="lab")),
        ("Start bob/lab", SlashCommand(Verb.START, name="lab", owner="bob")),
        ("stop", SlashCommand(Verb.HELP)),
        ("start a b", SlashCommand(Verb.HELP)),
        ("usage", SlashCommand(Verb.USAGE)),
        ("help", SlashCommand(Verb.HELP)),
        ("", SlashCommand(Verb.HELP)),
        ("delete", SlashCommand(Verb.HELP)),
        ("delete a b", SlashCommand(Verb.HELP)),
        ("make me a sandwich", SlashCommand(Verb.HELP)),
    ],
)
def test_slash_command_text_is_parsed_and_anything_unknown_asks_for_help(
    text: str, expected: SlashCommand
) -> None:
    assert parse_command(text) == expected


def _submitted(**fields: object) -> dict[str, dict[str, dict[str, object]]]:
    values: dict[str, dict[str, dict[str, object]]] = {}
    for name, value in fields.items():
        if name == forms.IMAGE:
            state: dict[str, object] = {
                "type": "static_select",
                "selected_option": {"value": value},
            }
        elif name == forms.DEDICATED:
            state = {"type": "checkboxes", "selected_options": [{"value": "yes"}] if value else []}
        else:
            state = {"type": "plain_text_input", "value": value}
        values[name] = {name: state}
    return values


def test_form_values_are_read_by_field_with_empty_inputs_left_out() -> None:
    values = _submitted(name=" lab ", image="pytorch", cpu="4", memory="", dedicated_cores=True)
    assert forms.read_values(values) == {
        "name": "lab",
        "image": "pytorch",
        "cpu": "4",
        "dedicated_cores": True,
    }


def test_a_complete_form_becomes_the_create_command() -> None:
    fields = forms.read_values(
        _submitted(
            name="lab", image="pytorch", gpus="1", cpu="4", memory="16Gi", volume_size="50Gi"
        )
    )
    command = forms.command_from_form(fields, actor=ALICE, owner="alice", request_id="slack:V1")
    assert isinstance(command, CreateEnvironment)
    assert (command.owner, command.name, command.image, command.gpus) == (
        "alice",
        "lab",
        "pytorch",
        1,
    )
    assert command.resources == Resources.of("4", "16Gi", 1)
    assert command.volume_size == "50Gi"


def test_form_errors_are_shown_under_the_fields_they_belong_to() -> None:
    fields = forms.read_values(
        _submitted(name="Not A Name", image="pytorch", cpu="lots", memory="16Gi")
    )
    errors = forms.command_from_form(fields, actor=ALICE, owner="alice", request_id="slack:V1")
    assert isinstance(errors, dict)
    assert set(errors) == {"name", "cpu"}


def test_a_cross_field_rule_is_shown_under_the_field_it_names() -> None:
    fields = forms.read_values(
        _submitted(name="lab", image="pytorch", cpu="1.5", memory="4Gi", dedicated_cores=True)
    )
    errors = forms.command_from_form(fields, actor=ALICE, owner="alice", request_id="slack:V1")
    assert errors == {"cpu": "dedicated cores need a whole number of CPUs, e.g. '4'"}


def test_a_shrink_proposes_about_half_in_whole_cores_and_gib() -> None:
    form = forms.smaller_form("lab", "pytorch", Resources.of("8", "64Gi", 3))
    assert form == forms.EnvironmentForm(
        name="lab", image="pytorch", cpu="4", memory="32Gi", gpus=1
    )


def test_a_shrink_never_goes_below_one_core_and_one_gib() -> None:
    form = forms.smaller_form("lab", None, Resources.of("500m", "1Gi"))
    assert (form.cpu, form.memory, form.gpus) == ("1", "1Gi", 0)


def test_a_mapped_slack_user_acts_as_their_platform_user_and_admins_as_admins() -> None:
    directory = Directory({"U1": "alice", "U2": "bob"}, admins=frozenset({"U2"}))
    assert directory.actor("U1") == ALICE
    assert directory.actor("U2") == Actor(user_id="bob", source=Source.SLACK, role=Role.ADMIN)
    assert directory.actor("U3") is None
    assert directory.slack_user_of("bob") == "U2"
    assert directory.slack_user_of("carol") is None


def test_commands_are_taken_everywhere_unless_channels_are_configured() -> None:
    assert channel_allowed(frozenset(), "CANY")
    assert channel_allowed(frozenset({"CLAB"}), "CLAB")
    assert not channel_allowed(frozenset({"CLAB"}), "CRANDOM")


@pytest.mark.parametrize("verb", ["delete", "stop", "start"])
def test_a_name_that_no_environment_can_have_is_explained_not_acted_on(verb: str) -> None:
    parsed = parse_command(f"{verb} Lab_1")
    assert (parsed.verb, parsed.name, parsed.owner) == (Verb(verb), None, None)
    assert parsed.problem is not None
    assert parsed.problem.startswith("'Lab_1' is not a name: it must consist of lower-case")


def test_a_users_file_maps_slack_ids_and_the_settings_win_where_both_name_one(
    tmp_path: Path,
) -> None:
    users_file = tmp_path / "users.yaml"
    users_file.write_text("U1: alice\nU2: bob\n")
    settings = SlackSettings(
        slack_mode=SlackMode.HTTP,
        slack_bot_token=SecretStr("xoxb-1"),
        slack_signing_secret=SecretStr("s"),
        slack_users={"U2": "robert"},
        slack_users_file=users_file,
    )
    assert directory_of(settings).users == {"U1": "alice", "U2": "robert"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lab", Target("lab")),
        ("bob/lab", Target("lab", owner="bob")),
        ("/lab", Target("lab")),
        ("bob/", "'' is not a name: it must not be empty."),
        ("Bob/lab", "'Bob' is not a name: it must consist of lower-case letters"),
        ("a/b/lab", "'a/b' is not a name: it must consist of lower-case letters"),
    ],
)
def test_an_environment_is_named_as_name_or_owner_slash_name(
    text: str, expected: Target | str
) -> None:
    target = parse_target(text)
    if isinstance(expected, str):
        assert isinstance(target, str)
        assert target.startswith(expected)
    else:
        assert target == expected


ADMIN = Actor(user_id="root", source=Source.SLACK, role=Role.ADMIN)


def test_unlinked_slack_users_get_only_the_actions_open_to_anyone() -> None:
    open_to_anyone = {a for a, rule in access.POLICY.items() if rule.who is access.Who.ANYONE}
    assert open_to_anyone == {access.SlackAction.HELP, access.SlackAction.OPEN_PRESSED}
    for action in access.SlackAction:
        reason = access.refusal(action, "USTRANGER", None)
        if action in open_to_anyone:
            assert reason is None
        else:
            assert reason is not None
            assert "not linked" in reason
            assert "USTRANGER" in reason


def test_linked_users_act_on_owners_they_may_act_on_as_the_gateway_decides() -> None:
    delete = access.SlackAction.DELETE_SUBMITTED
    assert access.refusal(delete, "UALICE", ALICE) is None
    assert access.refusal(delete, "UALICE", ALICE, "alice") is None
    assert access.refusal(delete, "UALICE", ALICE, "bob") == (
        "You may not act on bob's environments: researchers act on their own only; ask bob "
        "or an admin."
    )
    assert access.refusal(delete, "UADMIN", ADMIN, "bob") is None
