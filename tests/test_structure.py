"""The house rules of the code's structure, checked on the source: layers point down only,
no import circles between modules, no module over 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("appliance", "center", "cli", "devices", "sync", "kiosk_ui", "bench")
# What each layer may not import: devices know nothing above them; the domain imports no web
# app, sync, command line or benchmark (the composition root gets those as factories). The
# provincial center is another product: the site knows nothing of it, and it knows nothing of
# the site's screens or devices.
FORBIDDEN = {"devices": ("appliance", "kiosk_ui", "sync", "cli", "bench", "center"),
             "appliance": ("kiosk_ui", "sync", "cli", "bench", "center"),
             "sync": ("center", "kiosk_ui", "cli", "bench"),
             "kiosk_ui": ("center",),
             "center": ("kiosk_ui", "cli", "bench", "devices")}
# Of the site's code, the center uses only the pieces both sides share: the formats (canonical
# JSON, Merkle trees, signed notes, record signatures, key fingerprints, the evidence package's
# constants), the clock, the
# hardened HTTP server and its address throttle; and of sync/, the feed's format, the signed
# statements and the request body reader.
CENTER_MAY_USE = {"appliance.canonical", "appliance.merkle", "appliance.signednote", "appliance.signing", "appliance.keys",
                  "appliance.evidence_format",
                  "appliance.clock", "appliance.webserver", "appliance.throttle", "appliance", "sync.feed", "sync.statements",
                  "sync.requestbody", "sync"}
MAX_LINES = 600


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges = {name: imports(path, name, known) for name, path in mods.items()}
    # A module importing its own package's __init__ (implicitly, to reach a sibling) is no circle.
    return {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in edges.items()}


def test_layers_point_down_only():
    wrong = [(name, target) for name, targets in graph().items() for target in targets
             if any(name.split(".")[0] == layer and target.split(".")[0] in banned for layer, banned in FORBIDDEN.items())]
    assert wrong == []


def test_the_center_uses_only_the_shared_pieces_of_the_site():
    wrong = sorted((name, target) for name, targets in graph().items() if name.split(".")[0] == "center"
                   for target in targets if target.split(".")[0] in ("appliance", "sync") and target not in CENTER_MAY_USE)
    assert wrong == []


def test_no_import_circles():
    edges = graph()
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_no_module_over_600_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
