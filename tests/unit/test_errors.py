"""Graph error objects and Graph's wording for validation problems, without the app."""

from __future__ import annotations

import re

import pytest

from mock_meta_api.errors import (
    CATALOGUE,
    GraphError,
    invalid_parameter,
    invalid_token,
    new_fbtrace_id,
    title_of,
    unknown_object,
    unknown_path,
)
from mock_meta_api.payloads import graph_param

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


def test_catalogued_error_body_has_meta_shape_and_order() -> None:
    body = GraphError(131056, 400).body("TRACE")

    assert list(body["error"]) == ["message", "type", "code", "error_data", "fbtrace_id"]
    assert body == {
        "error": {
            "message": "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "type": "OAuthException",
            "code": 131056,
            "error_data": {"messaging_product": "whatsapp", "details": CATALOGUE[131056][2]},
            "fbtrace_id": "TRACE",
        }
    }


def test_subcode_only_when_set() -> None:
    assert "error_subcode" not in GraphError(131000).body("T")["error"]
    assert GraphError(131000, error_subcode=2494010).body("T")["error"]["error_subcode"] == 2494010


def test_uncatalogued_code_gets_generic_title_and_details() -> None:
    error = GraphError(4242).body("T")["error"]

    assert error["message"] == "(#4242) Error 4242"
    assert error["error_data"]["details"] == "Error 4242"
    assert title_of(4242) == "Error 4242"


def test_constructors() -> None:
    assert invalid_parameter("why").body("T")["error"]["error_data"]["details"] == "why"
    token = invalid_token()
    assert (token.code, token.http_status) == (190, 401)
    assert "error_data" not in token.body("T")["error"]
    path = unknown_path("/x").body("T")["error"]
    assert (path["code"], path["message"]) == (2500, "Unknown path components: /x")
    missing = unknown_object("123")
    assert (missing.code, missing.http_status) == (100, 400)
    assert "'123'" in missing.body("T")["error"]["message"]


def test_fbtrace_ids_look_like_metas_and_are_unique() -> None:
    ids = {new_fbtrace_id() for _ in range(200)}

    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20,30}", trace) for trace in ids)


@pytest.mark.parametrize(
    ("loc", "param"),
    [
        ((), "body"),
        (("to",), "to"),
        (("text", "body"), "text['body']"),
        (("template", "language", "code"), "template['language']['code']"),
        (("template", "components", 0), "template['components']['0']"),
    ],
)
def test_graph_param_notation(loc: tuple, param: str) -> None:
    assert graph_param(loc) == param
