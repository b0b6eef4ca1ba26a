"""What one analysis hands on to the stages after it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.experiments import ExperimentSet


@dataclass(frozen=True)
class AnalysisResult:
    """What later stages need from one analysis: its experiments, clusters and labels.

    Made by ``mnsmeta run`` and handed on in memory, or read back from a results folder.
    For a subtraction, ``labels`` holds each direction's labels (``labels_by_direction``).
    """

    analysis: Analysis
    experiments: ExperimentSet | None
    clusters: pd.DataFrame
    labels: np.ndarray | None
    thresholded: np.ndarray | None = None
    labels_by_direction: dict | None = None

    def cluster_voxels(self, row) -> np.ndarray:
        """(n, 3) voxel indices of the cluster a ``clusters`` row describes."""
        if self.analysis.is_subtraction:
            minuend, subtrahend = str(row["direction"]).split(">")
            labels = self.labels_by_direction[minuend, subtrahend]
        else:
            labels = self.labels
        return np.argwhere(labels == row["cluster"])
