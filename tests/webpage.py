"""The web page's JavaScript, read from the repository for tests that need no browser: its module files,
their imports, and a small scan that tells their code from their string literals and comments."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chalicelib.core.statuses import DropStatus, OrderStatus

WEB = Path(__file__).resolve().parents[1] / "web"
JS = WEB / "js"
ENTRY = "js/main.js"
EVENTS = JS / "events.js"

# Statuses and codes the page also spells, as statuses and error codes rather than as pushes (docs/api.md):
# a wire name that is one of these can't be told apart by its spelling alone.
DROP_STATUSES = {status.value for status in DropStatus}
ORDER_STATUSES = {status.value for status in OrderStatus}
TOAST_KINDS = {"info", "error"}

# The page's modules start each import (or re-export) on a line of its own.
_IMPORT = re.compile(r'^(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|^import\s*"([^"]+)"', re.M)
HEADER = "// Generated from chalicelib/schema/messages.py by `python -m chalicelib.schema.messages --js`: do not edit."
ENUM = re.compile(r"export const (\w+) = Object\.freeze\(\{((?:\s*\"\w+\": \"\w+\",?)*)\s*\}\);")
MEMBER = re.compile(r'"(\w+)": "(\w+)"')


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
    return {name: dict(MEMBER.findall(body)) for name, body in ENUM.findall(text)}


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
