"""The reproduction harness (benchmarks/reproduce.py): its table reader and its matching rule.

The published foci files themselves cannot be fetched by `make test` (CI reaches only the
package registries) and may not be committed; these tests use a small table in their format
(tests/curation/test_tables.py reads the real one from the data mirror).
"""

from __future__ import annotations

import importlib.util
import re
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.errors import MnsmetaInputError


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "benchmarks/reproduce.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["reproduce"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _table(tmp_path, rows):
    path = tmp_path / "table.csv"
    lines = ["publication,n,contrasts,space,x,y,z"]
    lines += [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_foci_table_becomes_one_mni_experiment_per_publication(reproduce, tmp_path):
    """The harness reads the authors' table with mnsmeta's reader and the authors' grouping
    (a publication's contrasts pooled)."""
    from nimare.utils import tal2mni

    path = _table(
        tmp_path,
        [
            ("Study A", 12, "c1", "MNI", 10, 20, 30),
            ("Study A", 12, "c2", "MNI", -10, 20, 30),
            ("Study B", 14, "c1", "TAL", 50, -46, 22),
            ("Study A", 12, "c1", "MNI", 0, 0, 0),  # rows of one publication need not be adjacent
        ],
    )
    columns = reproduce.REPRODUCTIONS["lotter2023"].columns
    experiments, warnings = read_experiments(path, "t", columns=columns)
    assert warnings == []
    assert experiments.ids == ["Study A", "Study B"]
    np.testing.assert_array_equal(experiments.sample_sizes, [12, 14])
    np.testing.assert_array_equal(experiments.counts, [3, 1])
    np.testing.assert_allclose(experiments.xyz[3], tal2mni(np.array([[50, -46, 22]]))[0])


def test_a_publication_with_two_sample_sizes_is_refused(reproduce, tmp_path):
    path = _table(tmp_path, [("A", 12, "c", "MNI", 1, 2, 3), ("A", 13, "c", "MNI", 1, 2, 4)])
    columns = reproduce.REPRODUCTIONS["lotter2023"].columns
    message = re.escape("experiment 'A' has 2 different N values: 12 (rows 2); 13 (rows 3)")
    with pytest.raises(MnsmetaInputError, match=message):
        read_experiments(path, "t", columns=columns)


def test_a_published_cluster_is_reproduced_within_two_voxels_and_15_percent(reproduce):
    peaks = {"peak_x": [62, 38], "peak_y": [-48, 20], "peak_z": [16, 0]}
    ours = pd.DataFrame({"cluster": [1, 2], "size_mm3": [2832.0, 808.0], **peaks})
    found = reproduce.match((((62.0, -48.0, 16.0), 3040.0),), ours)
    assert found.loc[0, "our_cluster"] == 1 and found.loc[0, "reproduced"]
    assert found.loc[0, "volume_ratio"] == pytest.approx(2832 / 3040)
    moved = reproduce.match((((62.0, -48.0, 22.0), 3040.0),), ours)  # 6 mm away
    assert not moved.loc[0, "reproduced"]
    shrunk = reproduce.match((((62.0, -48.0, 16.0), 3400.0),), ours)  # 17 % smaller
    assert not shrunk.loc[0, "reproduced"]


def test_a_large_cluster_holding_the_published_peak_reproduces_it(reproduce):
    # Our peak is another local maximum 10 mm away, but the published peak lies inside it.
    peaks = {"peak_x": [-48], "peak_y": [24], "peak_z": [10]}
    ours = pd.DataFrame({"cluster": [1], "size_mm3": [9800.0], **peaks})
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    labels = np.zeros((40, 40, 40), dtype=int)
    labels[18:26, 8:16, 4:14] = 1  # voxels (36..50, 16..30, 8..26) mm
    inside = reproduce.match((((44.0, 18.0, 24.0), 10232.0),), ours, labels, affine)
    assert inside.loc[0, "peak_inside"] and inside.loc[0, "reproduced"]
    assert inside.loc[0, "distance_mm"] > reproduce.PEAK_MM
    outside = reproduce.match((((60.0, 60.0, 60.0), 10232.0),), ours, labels, affine)
    assert not outside.loc[0, "peak_inside"] and not outside.loc[0, "reproduced"]
