"""The engine's real inputs: the committed SAD and BPD sets as NiMARE datasets, built once."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from mnsmeta.curation.experiments import build_experiments
from mnsmeta.meta_analysis.datasets import to_dataset


@pytest.fixture(scope="session")
def sad_dataset(project_curation):
    """Every eligible SAD study (the primary set and the variant-only ones): a realistic
    30-study set, the size the engine checks were calibrated on."""
    everyone = dataclasses.replace(project_curation, admit=("mixed_tables", "roi_coverage"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_dataset(build_experiments(everyone, "SAD"))


@pytest.fixture(scope="session")
def bpd_dataset(project_curation):
    """The BPD analysis's primary set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_dataset(build_experiments(project_curation, "BPD"))
