"""pyproject.toml: console scripts inside the package, no top-level modules,
the pinned dependencies, the licence and citation files; thin root scripts;
a short README whose test command is the one `.ci/run` runs."""

import ast
import importlib
import os
import re
import tomllib

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("train", "evaluate", "export", "tune", "predict")


def pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)


def test_console_scripts_point_at_package_functions():
    scripts = pyproject()["project"]["scripts"]
    assert set(scripts) == {f"glimpse-{name}" for name in SCRIPTS + ("visualize",)}
    for name, target in scripts.items():
        module_name, function = target.split(":")
        assert module_name.startswith("glimpse_keras.cli."), name
        assert callable(getattr(importlib.import_module(module_name), function)), target


def test_only_the_package_is_installed_and_the_pins_are_kept():
    project = pyproject()["project"]
    assert not os.path.exists(os.path.join(REPO, "setup.py"))  # whose py_modules installed train, export, ...
    assert pyproject()["tool"]["setuptools"]["packages"]["find"]["include"] == ["glimpse_keras", "glimpse_keras.*"]
    dependencies = project["dependencies"]
    for pin in ("tensorflow-cpu==2.21.0", "keras==3.15.1", "jax==0.10.2", "av==18.1.0", "keras-tuner==1.4.8"):
        assert pin in dependencies
    assert project["optional-dependencies"]["test"] == ["pytest==9.2.0"]
    assert project["license"] == {"text": "Apache-2.0"}


def test_root_scripts_are_thin_wrappers_of_the_package_commands():
    for name in SCRIPTS:
        path = os.path.join(REPO, f"{name}.py")
        tree = ast.parse(open(path).read())
        imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
        targets = {(node.module, alias.name) for node in imports for alias in node.names}
        assert (f"glimpse_keras.cli.{name}", "main") in targets, path
        functions = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        assert functions == [], f"{path} should hold no code of its own"


def test_licence_and_citation():
    licence = open(os.path.join(REPO, "LICENSE")).read()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    citation = yaml.safe_load(open(os.path.join(REPO, "CITATION.cff")))
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "Apache-2.0"
    paper = citation["preferred-citation"]
    assert paper["title"] == "Glimpse Clouds: Human Activity Recognition from Unstructured Feature Points"
    assert [author["family-names"] for author in paper["authors"]] == ["Baradel", "Wolf", "Mille", "Taylor"]
    assert paper["year"] == 2018 and "CVPR" in paper["conference"]["name"]


def test_default_config_is_found_from_another_directory(tmp_path, monkeypatch):
    from glimpse_keras.cli import default_config_path

    monkeypatch.chdir(tmp_path)
    assert default_config_path("demo.yaml") == os.path.join(REPO, "configs", "demo.yaml")


README_MAX_LINES = 200


def readme_commands():
    """The lines of the README's first code block, comments stripped."""
    with open(os.path.join(REPO, "README.md")) as handle:
        text = handle.read()
    block = re.search(r"^```bash\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has no ```bash block"
    before = text[: block.start()]
    assert [line for line in before.splitlines() if line.strip()] == ["# glimpse-keras"], "the commands come first"
    return [re.sub(r"\s+#\s.*$", "", line) for line in block.group(1).splitlines()]


def test_readme_is_short_and_starts_with_the_two_commands():
    with open(os.path.join(REPO, "README.md")) as handle:
        assert len(handle.read().splitlines()) <= README_MAX_LINES
    demo, tests = readme_commands()
    assert demo == "pip install -e . && python train.py"
    with open(os.path.join(REPO, ".ci", "run")) as handle:
        ci_command = [line for line in handle.read().splitlines() if line.strip()][-1]
    assert tests == ci_command  # .ci/run runs exactly the README's test command


def test_a_deprecation_warning_from_the_package_fails_the_tests():
    # pytest.ini: DeprecationWarnings attributed to a glimpse_keras module are
    # errors (the package keeps no deprecated names); other packages' stay quiet.
    import warnings

    import pytest

    with pytest.raises(DeprecationWarning, match="old name"):
        warnings.warn_explicit("old name", DeprecationWarning, "experiment.py", 1, module="glimpse_keras.experiment")
    warnings.warn_explicit("old name", DeprecationWarning, "module.py", 1, module="keras.src.module")
