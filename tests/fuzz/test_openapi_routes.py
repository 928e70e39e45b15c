"""The OpenAPI document lists exactly the app's routes, and the app serves it."""

from __future__ import annotations

from chalicelib.edge.openapi import document


def test_document_lists_exactly_the_apps_routes(app_module) -> None:
    app_routes = {(path, method.lower()) for path, methods in app_module.app.routes.items() for method in methods}
    documented = {(path, method) for path, item in document()["paths"].items() for method in item}
    assert documented == app_routes


def test_every_operation_says_what_it_returns(app_module) -> None:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            route = app_module.app.routes[path][method.upper()]
            needs_token = route.authorizer is not None
            assert bool(operation["security"]) == needs_token, (method, path)
            if needs_token:
                assert "401" in operation["responses"], (method, path)


def test_served_at_openapi_json(api) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
