"""What API Gateway itself answers (before or instead of the app) in the API's error shape
`{"error": {"code", "message"}}`: the REST API's gateway responses in AWS, and the dev stack's REST
gateway for the same refusals. No CDK here: the dev stack reads it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayResponse:
    # None keeps the status API Gateway chose (the DEFAULT_* responses cover many).
    status: int | None
    code: str
    # What API Gateway says ($context.error.message) for the fixed-status responses.
    message: str


GATEWAY_RESPONSES: dict[str, GatewayResponse] = {
    "UNAUTHORIZED": GatewayResponse(401, "unauthorized", "Unauthorized"),
    "MISSING_AUTHENTICATION_TOKEN": GatewayResponse(403, "route_not_found", "Missing Authentication Token"),
    "ACCESS_DENIED": GatewayResponse(403, "forbidden", "Forbidden"),
    "UNSUPPORTED_MEDIA_TYPE": GatewayResponse(415, "unsupported_media_type", "Unsupported Media Type"),
    "REQUEST_TOO_LARGE": GatewayResponse(413, "request_too_large", "Request Too Long"),
    "THROTTLED": GatewayResponse(429, "throttled", "Too Many Requests"),
    "QUOTA_EXCEEDED": GatewayResponse(429, "throttled", "Limit Exceeded"),
    "INTEGRATION_TIMEOUT": GatewayResponse(504, "timeout", "Endpoint request timed out"),
    "DEFAULT_4XX": GatewayResponse(None, "bad_request", "Bad Request"),
    "DEFAULT_5XX": GatewayResponse(None, "internal_error", "Internal server error"),
}


def body(response_type: str) -> bytes:
    """The body the dev stack's gateway sends for `response_type` (AWS renders the same from the template)."""
    response = GATEWAY_RESPONSES[response_type]
    return json.dumps({"error": {"code": response.code, "message": response.message}}).encode()


def openapi_extension() -> dict[str, dict[str, object]]:
    """`x-amazon-apigateway-gateway-responses` for the REST API's definition."""
    extension: dict[str, dict[str, object]] = {}
    for response_type, response in GATEWAY_RESPONSES.items():
        # $context.error.messageString is the message already quoted as a JSON string.
        code = json.dumps(response.code)
        template = '{"error": {"code": ' + code + ', "message": $context.error.messageString}}'
        entry: dict[str, object] = {
            "responseParameters": {"gatewayresponse.header.Content-Type": "'application/json'"},
            "responseTemplates": {"application/json": template},
        }
        if response.status is not None:
            entry["statusCode"] = str(response.status)
        extension[response_type] = entry
    return extension
