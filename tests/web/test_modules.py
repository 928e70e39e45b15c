"""The web page's code as ES modules, checked without a browser: the page loads one module tree, every
import resolves to a module file the dev stack serves as JavaScript, the modules form no cycle, and
push and frame type names come only from web/js/events.js (generated from chalicelib's messages)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

WEB = Path(__file__).resolve().parents[2] / "web"
JS = WEB / "js"
ENTRY = "js/main.js"
EVENTS = JS / "events.js"

# Statuses and codes the page also spells, as statuses and error codes rather than as pushes (docs/api.md):
# a wire name that is one of these can't be told apart by its spelling alone.
DROP_STATUSES = {"scheduled", "live", "sold_out", "ended"}
ORDER_STATUSES = {"pending_payment", "confirmed", "payment_failed", "expired"}
TOAST_KINDS = {"info", "error"}

# The page's modules start each import (or re-export) on a line of its own.
_IMPORT = re.compile(r'^(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|^import\s*"([^"]+)"', re.M)
_HEADER = "// Generated from chalicelib/messages.py by `python -m chalicelib.messages --js`: do not edit."
_ENUM = re.compile(r"export const (\w+) = Object\.freeze\(\{((?:\s*\"\w+\": \"\w+\",?)*)\s*\}\);")
_MEMBER = re.compile(r'"(\w+)": "(\w+)"')


@dataclass
class Scanned:
    """A module's code with string literals and comments cut out, and the string literals apart."""

    code: str = ""
    strings: list[tuple[str, int]] = field(default_factory=list)  # (value, where its "" stands in `code`)


class _Scanner:
    """Just enough of a JavaScript tokenizer to tell code from strings and comments: quotes, template
    literals with ${...} inside, line and block comments. Regular expression literals are read as code,
    which holds for the page's few (none holds a quote or two slashes in a row)."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.code: list[str] = []
        self.strings: list[tuple[str, int]] = []

    def scan(self) -> Scanned:
        end = self._code(0, nested=False)
        assert end == len(self.src)
        return Scanned("".join(self.code), self.strings)

    def _code(self, i: int, nested: bool) -> int:
        src, depth = self.src, 0
        while i < len(src):
            char = src[i]
            if src.startswith("//", i):
                newline = src.find("\n", i)
                i = len(src) if newline < 0 else newline
            elif src.startswith("/*", i):
                i = src.index("*/", i) + 2
            elif char in "\"'":
                i = self._quoted(i)
            elif char == "`":
                i = self._template(i)
            else:
                if nested and char == "}":
                    if depth == 0:
                        return i + 1
                    depth -= 1
                elif nested and char == "{":
                    depth += 1
                self.code.append(char)
                i += 1
        assert not nested, "a ${...} in a template literal is not closed"
        return i

    def _literal(self, value: list[str]) -> None:
        self.strings.append(("".join(value), len("".join(self.code))))
        self.code.append('""')

    def _quoted(self, i: int) -> int:
        quote, j, value = self.src[i], i + 1, []
        while self.src[j] != quote:
            assert self.src[j] != "\n", f"unterminated string at {i}"
            if self.src[j] == "\\":
                value.append(self.src[j + 1])
                j += 2
            else:
                value.append(self.src[j])
                j += 1
        self._literal(value)
        return j + 1

    def _template(self, i: int) -> int:
        j, value = i + 1, []
        while self.src[j] != "`":
            if self.src[j] == "\\":
                value.append(self.src[j + 1])
                j += 2
            elif self.src.startswith("${", j):
                self._literal(value)
                value = []
                j = self._code(j + 2, nested=True)
            else:
                value.append(self.src[j])
                j += 1
        self._literal(value)
        return j + 1


def scan(path: Path) -> Scanned:
    return _Scanner(path.read_text()).scan()


def modules() -> list[Path]:
    return sorted(JS.rglob("*.js"))


def imports_of(path: Path) -> list[str]:
    """The specifiers a module imports from (import ... from "x", import "x", export ... from "x")."""
    code = path.read_text()
    return [a or b for a, b in _IMPORT.findall(code)]


def resolve(module: Path, specifier: str) -> Path:
    assert specifier.startswith(("./", "../")), f"{module.name} imports {specifier!r}: no build step, no packages"
    assert specifier.endswith(".js"), f"{module.name} imports {specifier!r}: a browser needs the file's full name"
    return (module.parent / specifier).resolve()


def event_enums() -> dict[str, dict[str, str]]:
    """EventType and FrameType of web/js/events.js: member name -> wire value."""
    text = EVENTS.read_text()
    return {name: dict(_MEMBER.findall(body)) for name, body in _ENUM.findall(text)}


def wire_names() -> set[str]:
    return {value for members in event_enums().values() for value in members.values()}


def error_codes() -> set[str]:
    """The API error codes the page has a sentence for (api.js's ERROR_TEXT)."""
    text = (JS / "api.js").read_text()
    block = text[text.index("export const ERROR_TEXT = {") : text.index("};", text.index("export const ERROR_TEXT"))]
    return set(re.findall(r"^\s+(\w+):", block, re.M))


def js_files_but_events() -> Iterator[tuple[Path, Scanned]]:
    for path in modules():
        if path != EVENTS:
            yield path, scan(path)


# --- the module tree ---------------------------------------------------------------------------------


def test_the_page_loads_its_code_as_one_module_tree() -> None:
    html = (WEB / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == [f'<script type="module" src="{ENTRY}">'], scripts


def test_every_import_resolves_to_a_module_file_and_every_module_file_is_imported() -> None:
    reached, todo = set(), [(WEB / ENTRY).resolve()]
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        assert module.is_file(), f"{module} is imported but missing"
        assert JS.resolve() in module.parents, f"{module} is outside web/js"
        reached.add(module)
        todo.extend(resolve(module, specifier) for specifier in imports_of(module))
    assert reached == {path.resolve() for path in modules()}, "web/js holds a module nothing imports"


def test_no_module_imports_one_that_imports_it_back() -> None:
    """Wiring is explicit (main.js hands callbacks in), so no module's evaluation depends on import order."""
    graph = {path.resolve(): [resolve(path, s) for s in imports_of(path)] for path in modules()}
    done: set[Path] = set()

    def visit(node: Path, trail: tuple[Path, ...]) -> None:
        assert node not in trail, "import cycle: " + " -> ".join(p.name for p in (*trail, node))
        if node in done:
            return
        for child in graph[node]:
            visit(child, (*trail, node))
        done.add(node)

    for node in graph:
        visit(node, ())


def test_imports_are_static_and_the_modules_need_no_globals_of_each_other() -> None:
    for path, scanned in js_files_but_events():
        assert "import(" not in scanned.code, f"{path.name}: a dynamic import is not followed by these checks"
        assert not re.search(r"\bwindow\.\w+\s*=", scanned.code), f"{path.name} hands something over as a global"


# --- event and frame names ---------------------------------------------------------------------------


def test_events_js_holds_only_the_two_generated_enumerations() -> None:
    text = EVENTS.read_text()
    assert text.startswith(_HEADER + "\n")
    enums = event_enums()
    assert set(enums) == {"EventType", "FrameType"}
    assert not _ENUM.sub("", text[len(_HEADER) :]).strip(), "events.js holds more than the two enumerations"
    for members in enums.values():
        assert members, "an empty enumeration"
        assert all(member == value.upper() for member, value in members.items()), members


def test_every_event_and_frame_name_the_page_uses_is_defined_in_events_js() -> None:
    enums = event_enums()
    used = 0
    for path, scanned in js_files_but_events():
        for enum, member in re.findall(r"\b(EventType|FrameType)\.(\w+)", scanned.code):
            assert member in enums[enum], f"{path.name} uses {enum}.{member}, which events.js does not define"
            used += 1
    assert used, "the page names no event at all"


def test_no_module_but_events_js_spells_a_push_or_frame_name() -> None:
    other_words = DROP_STATUSES | ORDER_STATUSES | TOAST_KINDS | error_codes()
    names = wire_names()
    only_events = names - other_words
    for path, scanned in js_files_but_events():
        for value, at in scanned.strings:
            assert value not in only_events, f"{path.name} spells {value!r}: use events.js"
            if value in names:
                before, after = scanned.code[:at].rstrip(), scanned.code[at + 2 :].lstrip()
                # A status may be compared with "sold_out"; a frame's or a notification's type may not.
                compared = re.search(r"\btype\s*[!=]==?$", before) or re.match(r"[!=]==?\s*[\w$.]*\btype\b", after)
                assert not compared, f"{path.name} compares a type with {value!r}: use events.js"
        for name in only_events:  # as an object's key, e.g. {order_confirmed: "..."}
            assert not re.search(rf"(?<![\w$.]){name}\s*:", scanned.code), f"{path.name} spells {name} as a key"


# --- served by the dev stack --------------------------------------------------------------------------


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
