"""The masks of a run: made from the analyses that declare them, the databases and the atlas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.data.space import brain_mask_img
from mnsmeta.meta_analysis.analysis_result import AnalysisResult
from mnsmeta.workflows.masks import masks_for, write_masks
from mnsmeta.workflows.results import ResultsFolder

BRAIN = np.asarray(brain_mask_img().dataobj) > 0


def _result(analysis, boxes, p_high=(0.001,)):
    """An analysis result whose clusters are the given boxes (i, j, k slices)."""
    labels = np.zeros(BRAIN.shape, dtype=int)
    for number, box in enumerate(boxes, start=1):
        labels[box] = number
    clusters = pd.DataFrame(
        {
            "cluster": range(1, len(boxes) + 1),
            "size_voxels": [int((labels == n).sum()) for n in range(1, len(boxes) + 1)],
            "peak_x": 0.0,
            "peak_y": 0.0,
            "peak_z": 0.0,
            "p_fwe": [min(p, 0.049) for p in p_high],
            "p_fwe_mc_high": list(p_high),
        }
    )
    experiments = ExperimentSet.from_voxels(
        analysis.name, [f"{analysis.name}{e}" for e in range(20)],
        np.tile([[45, 60, 40]], (20, 1)), [1] * 20, [20] * 20,
    )  # fmt: skip
    return AnalysisResult(analysis, experiments, clusters, labels)


def test_every_mask_of_a_run_from_its_declared_analyses_and_the_databases(tmp_path):
    mns = Analysis("MNS", "ale", groups=("MNS",))
    observation = Analysis(
        "MNS_observation", "ale", groups=("MNS",), paradigms=("action_observation",),
        mask="curated",
    )  # fmt: skip
    execution = Analysis(
        "MNS_execution", "ale", groups=("MNS",), paradigms=("imitation",), mask="curated"
    )
    expert = Analysis(
        "MNS_expert", "ale", reference=("pintoslobo2022",), paradigms=("imitation",),
        mask="expert",
    )  # fmt: skip
    box = (slice(55, 65), slice(60, 70), slice(40, 50))  # wholly in the brain
    outputs = {
        "MNS": _result(mns, [box, (slice(30, 33), slice(50, 53), slice(30, 33))], (0.001, 0.06)),
        "MNS_observation": _result(observation, [box]),
        "MNS_execution": _result(execution, [(slice(60, 70), slice(60, 70), slice(40, 50))]),
        "MNS_expert": _result(expert, [box]),
    }
    analyses = [mns, observation, execution, expert]
    masks = masks_for(ResultsFolder(tmp_path), analyses, outputs=outputs)
    assert list(masks) == ["meta", "curated", "expert", "terms", "anatomical"]
    # The meta mask leaves the fragile cluster (p interval up to 0.06) out and names it.
    assert masks["meta"].n_voxels == 1000
    assert masks["meta"].description["fragile_clusters_left_out"][0]["cluster"] == 2
    # The curated mask is the conjunction of its two analyses: half of each box.
    assert masks["curated"].n_voxels == 500
    assert set(masks["curated"].description["parts"]) == {"MNS_observation", "MNS_execution"}
    # The term-based mask from NeuroQuery 1: as measured on the release (deterministic).
    terms = masks["terms"].description["terms"]
    assert {t: v["studies"] for t, v in terms.items()} == {
        "action observation": 114, "imitation": 70, "action execution": 39,
    }  # fmt: skip
    assert masks["terms"].n_voxels == 5450
    # Written with sidecars and the agreement table.
    results = ResultsFolder(tmp_path)
    results.masks.path.mkdir(parents=True)
    agreement = write_masks(masks, results.masks)
    assert results.masks.agreement.is_file() and results.masks.sidecar("terms").is_file()
    pair = agreement[(agreement["first"] == "meta") & (agreement["second"] == "curated")]
    assert pair["shared_voxels"].iloc[0] == 500


def test_a_mask_whose_analyses_were_not_run_is_left_out_with_a_warning(tmp_path, caplog):
    """A partial run (`mnsmeta run --analyses MNS`) still tests the masks it can make."""
    mns = Analysis("MNS", "ale", groups=("MNS",))
    expert = Analysis(
        "MNS_expert", "ale", reference=("pintoslobo2022",), paradigms=("imitation",),
        mask="expert",
    )  # fmt: skip
    box = (slice(55, 65), slice(60, 70), slice(40, 50))
    outputs = {"MNS": _result(mns, [box])}
    masks = masks_for(ResultsFolder(tmp_path), [mns, expert], outputs=outputs, terms=False)
    assert list(masks) == ["meta", "anatomical"]
    assert "mask 'expert' left out: MNS_expert not computed" in caplog.text
    assert "mnsmeta run --analyses MNS_expert" in caplog.text
