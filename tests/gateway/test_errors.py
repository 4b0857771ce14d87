"""The gateway answers every refusal of the shared intake from one table of HTTP statuses,
without Redis or HTTP."""

import akros_intake
from akros_gateway.errors import ANSWERS, Answer, ErrorCode, answer_of, body_field


def _kinds(base: type[akros_intake.RefusedError]) -> set[type[akros_intake.RefusedError]]:
    kinds = set(base.__subclasses__())
    return kinds.union(*(_kinds(kind) for kind in kinds))


def test_every_kind_of_refusal_the_intake_raises_has_its_own_answer() -> None:
    raised = {
        kind
        for kind in _kinds(akros_intake.RefusedError)
        if kind.__module__ == "akros_intake.errors"
    }
    assert raised, "the intake declares its refusals in akros_intake.errors"
    assert raised == set(ANSWERS), "a refusal without an answer would be a 500"


def test_quota_is_a_403_of_its_own_code_as_the_kubernetes_api_answers_it() -> None:
    assert answer_of(akros_intake.QuotaExceededError) == Answer(403, ErrorCode.QUOTA_EXCEEDED)
    assert answer_of(akros_intake.ForbiddenError) == Answer(403, ErrorCode.FORBIDDEN)


def test_a_narrower_refusal_is_answered_as_the_kind_it_extends() -> None:
    class NoSuchVolumeError(akros_intake.NotFoundError):
        pass

    assert answer_of(NoSuchVolumeError) == Answer(404, ErrorCode.NOT_FOUND)


def test_an_invalid_field_is_located_in_the_body_and_a_contradiction_is_the_body() -> None:
    assert body_field(akros_intake.InvalidError("cpu", "not a quantity")) == "body.cpu"
    assert body_field(akros_intake.InvalidError("", "gpu_model without gpus")) == "body"
