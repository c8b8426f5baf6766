"""The arrows of the design hold: each package imports only the layers below it.

Every import of every module counts: top-level, inside functions, and under TYPE_CHECKING, because
a circle of type-only imports still ties two files together for a reader. A plugin named as a
string (`Registry(plugins={"sim": "playworld.sim.robot"})`) is not an import: that is how a lower
layer lets a higher one register an implementation without depending on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "playworld"

#: package -> the packages it may import (besides itself). Shared modules sit at the bottom.
CORE = {"errors", "features", "priority", "registry", "video", "__init__"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "datasets": {"core"},
    "hardware": {"core"},
    "sim": {"core", "datasets", "hardware"},
    "collection": {"core", "datasets", "hardware", "sim"},
    "training": {"core", "datasets"},
    "world_models": {"core", "datasets", "hardware", "sim", "collection", "training"},
    "policies": {"core", "datasets", "hardware", "sim", "collection", "training"},
    "viewer": {"core", "datasets", "hardware", "sim", "collection"},
    "pipeline": {
        "core",
        "datasets",
        "hardware",
        "sim",
        "collection",
        "training",
        "world_models",
        "policies",
        "viewer",
    },
    "cli": {"*"},
}


def layer(module: str) -> str:
    """'playworld.sim.twin' -> 'sim'; shared top-level modules -> 'core'; cli / __main__ -> 'cli'."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core"
    head = parts[1]
    if head in CORE:
        return "core"
    if head in ("cli", "__main__"):
        return "cli"
    return head


def imports_of(path: Path) -> set[str]:
    """Every playworld module `path` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(ROOT.parent).with_suffix("")
    package = ".".join(rel.parts[:-1] if rel.name != "__init__" else rel.parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "playworld"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "playworld":
                out.add(name)
    return out


def test_every_import_follows_the_arrows():
    bad = []
    modules = sorted(ROOT.rglob("*.py"))
    assert len(modules) > 50
    for path in modules:
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        src = layer(module.removesuffix(".__init__"))
        if src not in ALLOWED:
            bad.append(f"{module}: package {src!r} has no place in ALLOWED (add it to the design)")
            continue
        for target in imports_of(path):
            dst = layer(target)
            if dst == src or "*" in ALLOWED[src] or dst in ALLOWED[src]:
                continue
            bad.append(f"{module} imports {target} ({src} -> {dst})")
    assert not bad, "imports against the arrows:\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["playworld.hardware.robot", "playworld.datasets.store"])
def test_the_check_can_fail(module, tmp_path):
    """A made-up upward import is caught (the test above is not vacuous)."""
    path = ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
    fake = tmp_path / "fake.py"
    fake.write_text(path.read_text() + "\nfrom playworld.collection.loop import ControlLoop\n")
    found = {layer(t) for t in imports_of_text(fake.read_text())}
    assert "collection" in found and "collection" not in ALLOWED[layer(module)]


def imports_of_text(text: str) -> set[str]:
    tree = ast.parse(text)
    return {
        n.module
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("playworld")
    }
