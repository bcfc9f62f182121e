"""Rules of the package's shape that review alone would let slip: no import cycle, kinds
of environment handled only by their backends, boto3 clients made only by the session,
no module much over DESIGN.md's ~400 lines."""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "mfe"
BACKENDS = {
    "mfe.envs.local",
    "mfe.envs.aws",
    "mfe.envs.store",
    "mfe.envs.dev",
    "mfe.envs.backend",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines inside `if TYPE_CHECKING:` blocks (imports for annotations only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports(name: str) -> set[str]:
    """The mfe modules `name` imports at run time, at the top or inside functions."""
    tree = ast.parse(MODULES[name].read_text())
    skip = type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m in MODULES and m != name}


def test_no_import_cycle() -> None:
    graph = {name: imports(name) for name in MODULES}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


MAX_LINES = 420  # DESIGN.md: "no module over ~400 lines"


def test_no_module_is_much_over_400_lines() -> None:
    long = {
        name: count
        for name, path in MODULES.items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules along a concern: {long}"


def test_environment_kinds_are_branched_on_only_in_their_backends() -> None:
    branching = re.compile(r"(?<!for )\bkind\s*(==|!=|(not\s+)?in\s)")
    offenders = [
        f"{name}:{number}: {line.strip()}"
        for name, path in MODULES.items()
        if name not in BACKENDS | {"mfe.config", "mfe.config_envs"}
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if branching.search(line)
    ]
    assert offenders == []


def test_boto3_clients_are_made_only_by_the_session() -> None:
    offenders = [
        name
        for name, path in MODULES.items()
        if name != "mfe.envs.session"
        and re.search(r"boto3\.(client|resource|session)|\.client\(\s*['\"]", path.read_text())
    ]
    assert offenders == []
