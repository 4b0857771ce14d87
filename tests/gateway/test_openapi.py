"""The committed OpenAPI document is the one the gateway serves."""

from pathlib import Path

from akros_gateway.openapi import build_document, render
from tests.gateway.conftest import Api

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_committed_openapi_document_is_current() -> None:
    assert DOCUMENT.read_text() == render(), "stale: run `make openapi` and commit the result"


def test_the_served_document_is_the_generated_one(api: Api) -> None:
    assert api.client.get("/openapi.json").json() == build_document()


def test_every_answer_of_every_endpoint_has_a_schema_or_says_its_media_type() -> None:
    for path, operations in build_document()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content")
                assert content, f"{method.upper()} {path} {status} documents no body"
                if "application/json" in content:
                    schema = content["application/json"]["schema"]
                    assert "$ref" in schema, f"{method.upper()} {path} {status} has no model"


def test_errors_are_documented_in_the_apis_own_error_shape() -> None:
    document = build_document()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    create = document["paths"]["/v1/environments"]["post"]["responses"]
    assert create["403"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "Location" in create["202"]["headers"]
