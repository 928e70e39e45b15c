"""Every invocation flushes its metrics as EMF (namespace LiveDrop) and logs with a correlation id."""

from __future__ import annotations

import json


def test_an_http_invocation_flushes_emf_and_sets_the_correlation_id(
    app_module, api, monkeypatch, capsys, stack
) -> None:
    from chalicelib.core.observability import logger

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    for catalog in stack.modules("chalicelib.domain.catalog"):  # the api's code has its own cache
        catalog.product_cache.clear()
    capsys.readouterr()
    response = api.get("/products/pr_missing")
    assert response.status_code == 404
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert lines, "the request's metrics were flushed"
    emf = lines[-1]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LiveDrop"
    assert "CacheMiss" in emf
    assert logger.get_correlation_id()  # the last request's API Gateway request id


def test_metrics_stay_off_stdout_in_the_dev_stack(app_module, api, capsys) -> None:
    capsys.readouterr()
    assert api.get("/products/pr_missing").status_code == 404
    assert '"_aws"' not in capsys.readouterr().out
