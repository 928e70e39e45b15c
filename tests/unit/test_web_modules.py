"""The web page's code as ES modules, checked without a browser or a server: the page loads one module
tree, every import resolves to a module file, the modules form no cycle, and push and frame type names
come only from web/js/events.js (generated from chalicelib's messages)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.webpage import (
    DROP_STATUSES,
    ENTRY,
    ENUM,
    EVENTS,
    HEADER,
    JS,
    ORDER_STATUSES,
    TOAST_KINDS,
    WEB,
    error_codes,
    event_enums,
    imports_of,
    js_files_but_events,
    modules,
    resolve,
    wire_names,
)

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
    assert text.startswith(HEADER + "\n")
    enums = event_enums()
    assert set(enums) == {"EventType", "FrameType"}
    assert not ENUM.sub("", text[len(HEADER) :]).strip(), "events.js holds more than the two enumerations"
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
