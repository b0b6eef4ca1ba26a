"""The package's structure, as specifications: one owner of the results layout, one adapter of
NiMARE's internals (and of every other package's private names), one public face of the engine,
no hidden imports. (The layers themselves are checked by import-linter in `make lint`.)"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from conftest import REPO

SOURCE = REPO / "src" / "mnsmeta"
RESULTS_MODULE = SOURCE / "workflows" / "results.py"
ADAPTER = SOURCE / "meta_analysis" / "nimare_adapter"
ENGINE = "mnsmeta.meta_analysis.engine"
#: What a results file name looks like: a name with an extension the results folder holds.
FILE_NAME = re.compile(r"^[\w.-]+\.(?:csv|tsv|txt|json|html|png|nii\.gz)$")
#: Stems of the thresholded maps, spelled without their extension in the contract.
STEM = re.compile(r"^(?:z|mask|labels)_(?:level|desc)-[\w-]+_thresh$")


def _python_files():
    files = sorted(SOURCE.rglob("*.py")) + sorted((REPO / "tests").rglob("*.py"))
    return [path for path in files if path not in (RESULTS_MODULE, Path(__file__))]


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant of the code, docstrings aside (they may teach file names)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _result_names() -> set[str]:
    """The file names and map stems that the results contract spells."""
    tree = ast.parse(RESULTS_MODULE.read_text())
    names = set()
    for _, value in _strings(tree):
        for word in re.split(r"[/\s{}]+", value):
            if FILE_NAME.match(word) or STEM.match(word):
                names.add(word)
    return names


def test_the_results_contract_spells_the_result_files():
    names = _result_names()
    for expected in ("clusters.csv", "summary.csv", "foci.tsv", "foci.txt", "claims.json"):
        assert expected in names
    assert "z_level-cluster_corr-FWE_thresh" in names


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_result_file_name_is_spelled_outside_the_results_module(path):
    names = _result_names()
    found = [
        f"{path.relative_to(REPO)}:{line}: {value!r}"
        for line, value in _strings(ast.parse(path.read_text()))
        if any(name in value for name in names)
    ]
    assert found == [], "ask mnsmeta.workflows.results for these names"


def _package_files(outside=None):
    """The package's modules (outside the folder ``outside``)."""
    return [
        path
        for path in sorted(SOURCE.rglob("*.py"))
        if outside is None or outside not in path.parents
    ]


def _ids(path: Path) -> str:
    return str(path.relative_to(REPO))


def _nimare_private_names() -> set[str]:
    from nimare.correct import FWECorrector
    from nimare.dataset import Dataset
    from nimare.meta.cbma.ale import ALE, ALESubtraction, BalancedALESubtraction
    from nimare.results import MetaResult

    names = set()
    for cls in (ALE, ALESubtraction, BalancedALESubtraction, FWECorrector, Dataset, MetaResult):
        names |= {name for name in dir(cls) if name.startswith("_") and not name.startswith("__")}
    return names


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return top not in ("mnsmeta", "__future__") and top not in sys.stdlib_module_names


@pytest.mark.parametrize("path", _package_files(outside=ADAPTER), ids=_ids)
def test_nimare_internals_are_used_only_in_the_adapter(path):
    # A private name of NiMARE read, called, overridden (a method of that name) or looked up
    # by its name in a string: all in mnsmeta.meta_analysis.nimare_adapter.
    private = _nimare_private_names()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in private:
            found.append(node.attr)
        if isinstance(node, ast.FunctionDef) and node.name in private:
            found.append(f"def {node.name}")
        if isinstance(node, ast.Constant) and node.value in private:
            found.append(repr(node.value))
    assert found == [], f"use mnsmeta.meta_analysis.nimare_adapter instead of {found}"


@pytest.mark.parametrize("path", _package_files(outside=ADAPTER), ids=_ids)
def test_no_private_name_of_any_third_party_package_outside_the_adapter(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and _third_party(node.module or ""):
            private = [a.name for a in node.names if a.name.startswith("_")]
            if any(part.startswith("_") for part in node.module.split(".")) or private:
                found.append(f"from {node.module} import {', '.join(private) or '...'}")
        if isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if _third_party(a.name) and any(p.startswith("_") for p in a.name.split("."))
            ]
    assert found == [], f"only mnsmeta.meta_analysis.nimare_adapter may import {found}"


@pytest.mark.parametrize("path", _package_files(outside=ADAPTER), ids=_ids)
def test_no_nimare_subclass_outside_the_adapter(path):
    tree = ast.parse(path.read_text())
    from_nimare = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nimare")
        for alias in node.names
    }
    found = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(isinstance(b, ast.Name) and b.id in from_nimare for b in node.bases)
    ]
    assert found == [], "NiMARE's estimators are subclassed in nimare_adapter.estimators"


@pytest.mark.parametrize("path", _package_files(), ids=_ids)
def test_no_hidden_imports(path):
    # Classes built by type(), modules found by strings or a module __getattr__: an import
    # that neither the import graph nor import-linter sees.
    tree = ast.parse(path.read_text())
    found = [
        f"line {node.lineno}: {ast.unparse(node)[:60]}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id in ("__import__",))
            or (isinstance(node.func, ast.Name) and node.func.id == "type" and len(node.args) == 3)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
        )
    ]
    found += [f"def {n.name}" for n in tree.body if isinstance(n, ast.FunctionDef)
              and n.name == "__getattr__"]  # fmt: skip
    found += [
        repr(value)
        for _, value in _strings(tree)
        if re.fullmatch(r"mnsmeta(\.\w+)+(:\w+)?", value)
    ]
    assert found == []


#: NiMARE's names of its nulls and FWE maps (the adapter's NULLS and map constants).
NIMARE_NAMES = re.compile(
    r"(?:values|summary_stat_thresh|histweights)_[\w-]*(?:method-montecarlo|corr-none)"
    r"|(?:logp|z)_(?:desc-(?:size|mass)_)?level-(?:cluster|voxel)_corr-FWE_method-montecarlo"
)


@pytest.mark.parametrize("path", _package_files(outside=ADAPTER), ids=_ids)
def test_nimare_null_and_map_names_are_spelled_only_in_the_adapter(path):
    found = [
        f"line {line}: {value!r}"
        for line, value in _strings(ast.parse(path.read_text()))
        if NIMARE_NAMES.search(value)
    ]
    assert found == [], "use nimare_adapter.NULLS, null() and the map names of ale.py"


@pytest.mark.parametrize("path", _package_files(outside=SOURCE / "meta_analysis"), ids=_ids)
def test_the_rest_of_the_package_uses_the_engine_through_its_public_names(path):
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        modules = []
        if isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        found += [m for m in modules if m.startswith(ENGINE + ".")]
    assert found == [], f"import from {ENGINE} (its __init__), not {found}"
