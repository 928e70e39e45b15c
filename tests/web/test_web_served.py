"""The dev stack serves the web page's modules as JavaScript, each at the URL its importer names."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
import requests

from tests.webpage import WEB, imports_of, modules


@pytest.mark.e2e
def test_the_dev_stack_serves_every_module_as_javascript_at_the_url_its_importer_names(stack) -> None:
    index = requests.get(stack.web_url, timeout=10)
    assert index.status_code == 200
    assert index.headers["Content-Type"].split(";")[0] == "text/html"
    served: set[str] = set()
    todo = [urljoin(stack.web_url, re.search(r'<script type="module" src="([^"]+)"', index.text)[1])]
    while todo:
        url = todo.pop()
        if url in served:
            continue
        response = requests.get(url, timeout=10)
        assert response.status_code == 200, url
        assert response.headers["Content-Type"].split(";")[0] == "text/javascript", (url, response.headers)
        served.add(url)
        local = WEB / url[len(stack.web_url) :]
        assert response.content == local.read_bytes()
        todo.extend(urljoin(url, specifier) for specifier in imports_of(local))
    assert served == {stack.web_url + path.relative_to(WEB).as_posix() for path in modules()}
    missing = requests.get(stack.web_url + "js/no-such-module.js", timeout=10)
    assert missing.status_code == 404
