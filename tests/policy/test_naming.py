"""Environment object names and hosts are injective: no two (owner, env) pairs share one, so
one researcher's environment can never be named, or reached, as another's."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akros_msgs.names import MAX_PART_LENGTH, check_label
from akros_policy.naming import (
    LABEL_ENV,
    LABEL_KIND,
    LABEL_OWNER,
    environment_host,
    environment_labels,
    environment_object_name,
    foreign_object_reason,
    legacy_environment_object_name,
    split_environment_host,
    split_environment_object_name,
)

# What akros_msgs.names accepts for an owner or an environment name.
parts = st.from_regex(r"[a-z]([-a-z0-9]{0,28}[a-z0-9])?", fullmatch=True).filter(
    lambda part: len(part) <= MAX_PART_LENGTH
)


def test_the_pair_that_collided_before_gets_two_names_and_two_hosts() -> None:
    # The review's pair: jan's "peter-lab" and jan-peter's "lab" were both "jan-peter-lab".
    assert legacy_environment_object_name("jan", "peter-lab") == (
        legacy_environment_object_name("jan-peter", "lab")
    )
    assert environment_object_name("jan", "peter-lab") == "jan-peter-lab-3"
    assert environment_object_name("jan-peter", "lab") == "jan-peter-lab-9"
    assert environment_host("jan", "peter-lab", "example.org") == "peter-lab-jan-9.example.org"
    assert environment_host("jan-peter", "lab", "example.org") == "lab-jan-peter-3.example.org"
    # The host's mirror image collided too: env "lab" of "peter-jan" vs "lab-peter" of "jan".
    assert environment_host("peter-jan", "lab", "x") != environment_host("jan", "lab-peter", "x")


@given(owner=parts, env=parts)
def test_a_name_splits_back_into_its_own_pair(owner: str, env: str) -> None:
    name = environment_object_name(owner, env)
    assert split_environment_object_name(name) == (owner, env)


@given(owner=parts, env=parts, other_owner=parts, other_env=parts)
def test_two_pairs_never_share_a_name_or_a_host(
    owner: str, env: str, other_owner: str, other_env: str
) -> None:
    if (owner, env) == (other_owner, other_env):
        return
    assert environment_object_name(owner, env) != environment_object_name(other_owner, other_env)
    assert environment_host(owner, env, "d") != environment_host(other_owner, other_env, "d")


def test_no_two_pairs_of_a_small_alphabet_share_a_name_or_a_host() -> None:
    """Every label of up to four characters over {a, b, -}: hypothesis may miss a pair, this
    cannot (the collisions of the old scheme are all among these)."""
    labels = [
        "".join(chars)
        for length in range(1, 5)
        for chars in itertools.product("ab-", repeat=length)
        if chars[0] != "-" and chars[-1] != "-"
    ]
    pairs = list(itertools.product(labels, repeat=2))
    assert len({legacy_environment_object_name(o, e) for o, e in pairs}) < len(pairs)
    assert len({environment_object_name(o, e) for o, e in pairs}) == len(pairs)
    assert len({environment_host(o, e, "d") for o, e in pairs}) == len(pairs)


@given(owner=parts, env=parts)
def test_names_and_hosts_are_dns_labels_of_at_most_63(owner: str, env: str) -> None:
    assert check_label(environment_object_name(owner, env)) == environment_object_name(owner, env)
    host_label = environment_host(owner, env, "example.org").removesuffix(".example.org")
    assert check_label(host_label) == host_label


def test_the_longest_parts_make_a_63_character_name() -> None:
    owner, env = "o" * MAX_PART_LENGTH, "e" * MAX_PART_LENGTH
    assert len(environment_object_name(owner, env)) == 63
    assert environment_object_name(owner, env).endswith("-u")  # 30 in base 36


@pytest.mark.parametrize(
    "name", ["alice-exp", "jan-peter-lab", "jan-peter-lab-4", "a-b-0", "ab-c", "x", ""]
)
def test_names_not_made_by_the_scheme_split_into_nothing(name: str) -> None:
    assert split_environment_object_name(name) is None


@given(owner=parts, env=parts)
def test_a_host_splits_back_into_its_own_environment(owner: str, env: str) -> None:
    host = environment_host(owner, env, "research.example")
    assert split_environment_host(host, "research.example") == (owner, env)
    # As a browser may send it: upper case, a port, the root's trailing dot.
    assert split_environment_host(f"{host.upper()}.:443", "research.example") == (owner, env)


def test_the_colliding_pair_has_two_hosts_that_each_name_their_own_owner() -> None:
    assert split_environment_host("peter-lab-jan-9.d", "d") == ("jan", "peter-lab")
    assert split_environment_host("lab-jan-peter-3.d", "d") == ("jan-peter", "lab")


@pytest.mark.parametrize(
    "host",
    [
        "lab-alice-3.other.example",  # another domain
        "lab-alice-3.evil.research.example",  # a name below ours
        "x.lab-alice-3.research.example",  # more than one label
        "research.example",  # the domain itself
        "lab-alice.research.example",  # the old scheme's
        "akros.research.example",  # the gateway's
        "",
    ],
)
def test_hosts_of_no_environment_split_into_nothing(host: str) -> None:
    assert split_environment_host(host, "research.example") is None


def _object(labels: dict[str, str] | None) -> dict[str, object]:
    return {"kind": "Service", "metadata": {"name": "jan-peter-lab-3", "labels": labels}}


def test_an_object_labelled_as_the_environment_may_be_touched() -> None:
    assert (
        foreign_object_reason(_object(environment_labels("jan", "peter-lab")), "jan", "peter-lab")
        is None
    )
    assert foreign_object_reason(None, "jan", "peter-lab") is None


@pytest.mark.parametrize(
    "labels",
    [
        environment_labels("jan-peter", "lab"),
        environment_labels("jan", "lab"),
        environment_labels("peter", "peter-lab"),
        {LABEL_OWNER: "jan", LABEL_ENV: "peter-lab"},  # not marked an environment's
        {LABEL_OWNER: "jan", LABEL_KIND: "environment"},
        {},
        None,
    ],
)
def test_an_object_labelled_otherwise_is_refused_without_saying_whose_it_is(
    labels: dict[str, str] | None,
) -> None:
    reason = foreign_object_reason(_object(labels), "jan", "peter-lab")
    assert reason is not None
    assert "Service 'jan-peter-lab-3' is not the one of your environment 'peter-lab'" in reason
    assert "leaves it alone" in reason
    assert "jan-peter " not in reason
    assert "'lab'" not in reason
