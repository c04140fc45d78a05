"""The package's structure: every module imports, no import circle, no
command outside `glimpse_keras.cli`.

The import graph is read from the source (`ast`): every `import` and
`from ... import` of a `glimpse_keras` module, at the top of a file or inside
a function, is an edge from the importing file to the imported file.
"""

import ast
import importlib
import os
import tomllib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "glimpse_keras")
# Imported only with an optional dependency installed.
OPTIONAL = {"glimpse_keras.data.convert_beam": "apache_beam"}


def package_modules():
    """{module name: file path} of every .py file of the package."""
    modules = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(path, modules):
    """The package modules that the file at `path` imports (a set of names)."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from a.b import c`: the module a.b.c when it is one, else a.b.
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph():
    modules = package_modules()
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()}


def circles(graph):
    """The import circles of `graph`: its strongly connected components of
    more than one module (Tarjan's algorithm), each a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_circle_finder_finds_a_circle_and_passes_a_chain():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_is_read_from_the_imports():
    graph = import_graph()
    assert "glimpse_keras.runs" in graph["glimpse_keras.training"]  # `from glimpse_keras import ..., runs`
    assert "glimpse_keras.errors" in graph["glimpse_keras.config"]  # `from glimpse_keras.errors import ...`
    assert "glimpse_keras.experiment" in graph["glimpse_keras.cli.train"]  # an import inside main()


def test_no_import_circle_in_the_package():
    assert circles(import_graph()) == []


def test_lower_layers_do_not_import_the_commands_or_the_run_folder():
    graph = import_graph()
    for name, targets in graph.items():
        # `python -m glimpse_keras.visualize` (its __main__) runs the command.
        if not name.startswith("glimpse_keras.cli") and not name.endswith(".__main__"):
            assert not {target for target in targets if target.startswith("glimpse_keras.cli")}, name
    above = ("glimpse_keras.training", "glimpse_keras.tuning", "glimpse_keras.visualize")  # and their submodules
    for low in ("glimpse_keras.callbacks", "glimpse_keras.config", "glimpse_keras.experiment"):
        assert not {target for target in graph[low] if target.startswith(above)}, low
    for low in ("glimpse_keras.config", "glimpse_keras.experiment"):  # runs.py reads runs into Experiments
        assert "glimpse_keras.runs" not in graph[low], low


@pytest.mark.parametrize("name", sorted(package_modules()))
def test_every_module_imports(name):
    if name in OPTIONAL:
        pytest.importorskip(OPTIONAL[name])
    importlib.import_module(name)


def test_every_console_script_is_a_main_of_glimpse_keras_cli():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        scripts = tomllib.load(handle)["project"]["scripts"]
    assert len(scripts) == 6
    for script, target in scripts.items():
        module, function = target.split(":")
        assert module.startswith("glimpse_keras.cli.") and function == "main", script
        assert callable(getattr(importlib.import_module(module), function)), target
