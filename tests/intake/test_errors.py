"""A refusal's detail is the words the person who asked reads (the Slack app shows it as is)."""

from akros_intake import InvalidError


def test_an_invalid_field_is_named_before_what_is_wrong_with_it() -> None:
    assert InvalidError("cpu", "not a quantity").detail == "cpu: not a quantity"


def test_fields_that_contradict_each_other_read_as_the_message_alone() -> None:
    refusal = InvalidError("", "a GPU model was given but gpus is 0")
    assert refusal.detail == "a GPU model was given but gpus is 0"
