"""The REST gateway builds API Gateway proxy events of AWS's shape, with the authorizer's claims."""

from __future__ import annotations

import json
from pathlib import Path

from chalice import Chalice, CognitoUserPoolAuthorizer

from devstack.http_gateway import HttpGateway

SAMPLE = json.loads((Path(__file__).resolve().parents[1] / "events" / "apigw-rest-proxy.json").read_text())


def _gateway(claims_for):
    app = Chalice(app_name="shape")
    seen: list[dict] = []
    auth = CognitoUserPoolAuthorizer("pool", provider_arns=["arn:aws:cognito-idp:us-east-1:1:userpool/p"])

    @app.route("/things/{thing_id}", methods=["POST"], authorizer=auth)
    def thing(thing_id):
        seen.append(app.current_request.to_original_event())
        return {"id": thing_id}

    return HttpGateway(app, claims_for), seen


def test_event_has_the_shape_api_gateway_sends() -> None:
    def claims_for(header):
        if header != "Bearer good":
            raise ValueError("bad token")
        return {"sub": "u1", "email_verified": "true"}

    gateway, seen = _gateway(claims_for)
    response = gateway.invoke("POST", "/things/42?a=1&a=2&b=3", {"Authorization": "Bearer good"}, b'{"x": 1}')
    assert response["statusCode"] == 200
    event = seen[0]
    assert set(SAMPLE) <= set(event)
    assert set(SAMPLE["requestContext"]) <= set(event["requestContext"])
    assert event["requestContext"]["authorizer"]["claims"] == {"sub": "u1", "email_verified": "true"}
    assert event["pathParameters"] == {"thing_id": "42"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert event["queryStringParameters"] == {"a": "2", "b": "3"}
    assert event["resource"] == "/things/{thing_id}" and event["httpMethod"] == "POST"
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False


def test_authorizer_refuses_before_the_app_runs() -> None:
    def claims_for(header):
        raise ValueError("nope")

    gateway, seen = _gateway(claims_for)
    assert gateway.invoke("POST", "/things/1", {}, None)["statusCode"] == 401
    assert gateway.invoke("POST", "/things/1", {"Authorization": "x"}, None)["statusCode"] == 401
    assert gateway.invoke("GET", "/things/1", {}, None)["statusCode"] == 403
    assert gateway.invoke("POST", "/nowhere", {}, None)["statusCode"] == 403
    assert seen == []
