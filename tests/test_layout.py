"""The package's structure, as specifications: one owner of the results layout, one adapter of
NiMARE's internals. (The layers themselves are checked by import-linter in `make lint`.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

SOURCE = REPO / "src" / "mnsmeta"
RESULTS_MODULE = SOURCE / "workflows" / "results.py"
ADAPTER = SOURCE / "meta_analysis" / "nimare_adapter.py"
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


def _nimare_private_names() -> set[str]:
    from nimare.correct import FWECorrector
    from nimare.dataset import Dataset
    from nimare.meta.cbma.ale import ALE, ALESubtraction

    names = set()
    for cls in (ALE, ALESubtraction, FWECorrector, Dataset):
        names |= {name for name in dir(cls) if name.startswith("_") and not name.startswith("__")}
    return names


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(SOURCE.rglob("*.py")) if p != ADAPTER],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_nimare_internals_are_used_only_in_the_adapter(path):
    private = _nimare_private_names()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nimare"):
            found += [alias.name for alias in node.names if alias.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr in private:
            found.append(node.attr)
    assert found == [], f"use mnsmeta.meta_analysis.nimare_adapter instead of {found}"
