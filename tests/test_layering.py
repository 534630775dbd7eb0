"""The architecture's promises, checked: no import cycle (lazy imports count), no
function hiding its module, the same run options on every routine that refits, and
a return type of ``fit`` that follows the type of ``spec.treated`` only."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import synthcontrol as sc

PACKAGE = Path(sc.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imports(name: str, path: Path, is_package: bool, modules: dict) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its body (module level,
    inside functions, under ``TYPE_CHECKING``): ``from . import x`` imports module
    ``x`` when there is one, else the package."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            names = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem for alias in node.names]
        else:
            continue
        for target in names:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def test_the_import_graph_has_no_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, is_package, modules) for name, (path, is_package) in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_function_hides_its_module():
    for info in pkgutil.walk_packages(sc.__path__, prefix="synthcontrol."):
        module = importlib.import_module(info.name)
        parent_name, _, child = info.name.rpartition(".")
        parent = importlib.import_module(parent_name)
        assert getattr(parent, child, module) is module, f"{parent_name}.{child} is not the module {info.name}"


@pytest.mark.parametrize(
    "routine",
    [sc.placebo_test, sc.placebo_tests, sc.in_time_placebo, sc.leave_one_out, sc.pooled_test, sc.conformal,
     sc.specification_curve],
)
def test_every_routine_that_refits_takes_the_same_run_options(routine):
    parameters = inspect.signature(routine).parameters
    assert {"n_jobs", "checkpoint_dir", "progress"} <= set(parameters), routine.__name__
    assert parameters["n_jobs"].default == 1 and parameters["checkpoint_dir"].default is None


def test_the_type_of_spec_treated_decides_what_fit_returns(panel, spec):
    import dataclasses

    assert isinstance(sc.fit(panel, spec), sc.SynthResult)
    for several in (["T"], ("T",), ["T", "A"]):
        results = sc.fit(panel, dataclasses.replace(spec, treated=several))
        assert isinstance(results, sc.SynthResults) and list(results) == list(several)
