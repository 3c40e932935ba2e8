"""The layers of ``src/jobqueue`` and what each may import (docs/decisions.md, "Layers").

Every import statement counts: at the top of a module, inside a function, or under
``TYPE_CHECKING``. A forbidden arrow or an import cycle fails with the file and line to look at.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import jobqueue

SRC = Path(jobqueue.__file__).parent

#: Layers, from the bottom up, and the modules (or packages, with their submodules) in each.
LAYERS: dict[str, tuple[str, ...]] = {
    "rules": (
        "jobqueue.job", "jobqueue.retry", "jobqueue.clock", "jobqueue.errors", "jobqueue.periodic", "jobqueue.limits",
    ),
    "shared": (
        "jobqueue.outcomes", "jobqueue.status", "jobqueue.retention", "jobqueue.lifecycle", "jobqueue.signals",
        "jobqueue.version", "jobqueue.logs",
    ),
    "backends": ("jobqueue.backends",),
    "app": (
        "jobqueue.app", "jobqueue.task", "jobqueue.portal", "jobqueue.registry", "jobqueue.scheduling",
        "jobqueue.flows", "jobqueue.control", "jobqueue.bulk", "jobqueue.insight",
    ),
    "worker": ("jobqueue.worker",),
    "api": ("jobqueue.api",),
    "testing": ("jobqueue.testing",),
    "composition": ("jobqueue.cli", "jobqueue.serving", "jobqueue.demo", "jobqueue.__main__", "jobqueue"),
}  # fmt: skip

#: What each layer may import besides itself.
ALLOWED: dict[str, set[str]] = {
    "rules": set(),
    "shared": {"rules"},
    "backends": {"rules", "shared"},
    "app": {"rules", "shared", "backends"},
    "worker": {"rules", "shared", "backends", "app"},
    "api": {"rules", "shared", "app"},
    "testing": {"rules", "shared", "backends", "app", "worker"},
    "composition": set(LAYERS),
}


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        path = SRC.parent / (self.source.replace(".", "/") + ".py")
        if not path.exists():
            path = path.with_suffix("") / "__init__.py"
        return f"{self.source} -> {self.target} ({path.relative_to(SRC.parent)}:{self.line})"


def module_names() -> dict[str, Path]:
    names = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def _resolve(name: str) -> str:
    """The module a dotted name is, or is in (``jobqueue.job.Job`` -> ``jobqueue.job``)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def arrows() -> list[Arrow]:
    found = []
    for source, path in MODULES.items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
                # "from pkg import mod" imports the submodule pkg.mod when there is one.
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.split(".")[0] == "jobqueue":
                    resolved = _resolve(target)
                    if resolved != source:
                        found.append(Arrow(source, resolved, node.lineno))
    return found


def layer_of(module: str) -> str:
    best = ""
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best.partition(":")[2]):
                best = f"{layer}:{prefix}"
    assert best, f"{module} belongs to no layer: add it to LAYERS (and to docs/decisions.md)"
    return best.partition(":")[0]


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_layer_imports_what_it_must_not() -> None:
    forbidden = [
        str(arrow)
        for arrow in arrows()
        if (target := layer_of(arrow.target)) != (source := layer_of(arrow.source)) and target not in ALLOWED[source]
    ]
    assert forbidden == []


def test_there_is_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for arrow in arrows():
        graph[arrow.source].add(arrow.target)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_rules_import_nothing_of_jobqueue_but_each_other() -> None:
    rules = set(LAYERS["rules"])
    assert [str(a) for a in arrows() if a.source in rules and a.target not in rules] == []
