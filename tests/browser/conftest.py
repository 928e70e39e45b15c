"""Browser fixtures: Debian's chromium (installed on first use), driven by Python playwright.

Playwright never downloads a browser here: it drives /usr/bin/chromium through `executable_path`.
A failing test leaves a screenshot of every page it opened in test-artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
_HANDLED_STATUS = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (CI runs as root on a fresh machine)."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("browser tests need /usr/bin/chromium, and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
    if not CHROMIUM.exists():
        pytest.fail("apt-get installed chromium but /usr/bin/chromium is still missing")
    return CHROMIUM


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the session (each context is a fresh, empty profile)."""
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Pages:
    """Opens pages, each in its own browser context (own sessionStorage); records their JS errors."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.opened: list[tuple[str, Any]] = []
        self.errors: list[str] = []

    def open(self, name: str, path: str = "", width: int = 1100, height: int = 900) -> Any:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{name}: {error}"))
        page.on("console", lambda msg: self._console(name, msg))
        self.opened.append((name, page))
        page.goto(self.base_url + path)
        page.wait_for_selector("html[data-ready=true]")
        return page

    def _console(self, name: str, message: Any) -> None:
        # Chromium logs every 4xx answer; those are API errors the page turns into messages itself.
        if message.type == "error" and not _HANDLED_STATUS.match(message.text):
            self.errors.append(f"{name} console: {message.text}")

    def screenshots(self, test_name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        for name, page in self.opened:
            try:
                page.screenshot(path=str(ARTIFACTS / f"{safe}-{name}.png"), full_page=True)
                (ARTIFACTS / f"{safe}-{name}.html").write_text(page.content())
            except Exception as error:  # a crashed page must not hide the test's own failure
                print(f"screenshot of {name} failed: {error}")

    def close(self) -> None:
        for _, page in self.opened:
            with contextlib.suppress(Exception):  # already closed with its browser
                page.context.close()


@pytest.fixture()
def pages(browser: Any, stack: Any, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """Open pages of the session stack's web page; screenshots of all of them if the test fails."""
    opened = Pages(browser, stack.web_url)
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed:
        opened.screenshots(request.node.name)
    opened.close()


@pytest.fixture()
def log_in() -> Callable[[Any, Any], None]:
    """Log a signed-up user in through the page's own form."""

    def go(page: Any, user: Any) -> None:
        page.goto(page.url.split("#")[0] + "#/login")
        page.get_by_test_id("auth-email").fill(user.email)
        page.get_by_test_id("auth-password").fill(user.password)
        page.get_by_test_id("auth-submit").click()
        page.wait_for_selector('[data-testid="ws-status"][data-state="open"]')

    return go


@pytest.fixture(scope="session", autouse=True)
def _dev_stack(stack: Any) -> Any:
    """This tier runs against the session's dev stack, started before its first test."""
    return stack


SCREENSHOTS_ENV = "LIVEDROP_SCREENSHOTS"


@pytest.fixture()
def shoot() -> Callable[[Any, str], None]:
    """Save the page's viewport as docs/screenshots/<name>.png when `make screenshots` asks for them
    (LIVEDROP_SCREENSHOTS names the folder); otherwise nothing."""

    def take(page: Any, name: str) -> None:
        folder = os.environ.get(SCREENSHOTS_ENV)
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.evaluate("document.querySelectorAll('[data-testid=toast]').forEach((t) => t.remove())")
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take
