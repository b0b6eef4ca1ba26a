"""Term association maps: where are studies that name a term more often active than others?

The reverse-inference test of Neurosynth (Yarkoni et al., 2011) and NiMARE's ``MKDAChi2``
(Wager et al., 2007): each study's foci become one binary map (10 mm spheres, a voxel
counted once per study); per voxel, a chi-square test of independence between "the study
names the term" and "the study activates the voxel". The counts are NiMARE's own
(``compute_kda_ma``), the test its ``two_way_counts``; the whole database is counted once and
each term's studies subtracted, so a term costs a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from mnsmeta.data.space import brain_mask_img

#: NiMARE's MKDA kernel radius (mm).
SPHERE_MM = 10


@dataclass(frozen=True)
class Association:
    """One term's association map on the brain mask's voxels."""

    z: np.ndarray
    p: np.ndarray
    n_selected: int
    n_unselected: int

    def significant(self, q: float) -> np.ndarray:
        """3D bool map of voxels positively associated at false discovery rate ``q``."""
        adjusted = stats.false_discovery_control(self.p, method="bh")
        brain = np.asarray(brain_mask_img().dataobj) > 0
        out = np.zeros(brain.shape, dtype=bool)
        out[brain] = (adjusted < q) & (self.z > 0)
        return out


class StudyCounts:
    """How many studies activate each voxel, for the database and any subset of it.

    Parameters
    ----------
    ijk : (n, 3) int array
        Every focus's voxel (MNI152 2 mm grid).
    study : (n,) int array
        The study (0 .. n_studies - 1) of each focus.
    n_studies : int
    """

    def __init__(self, ijk: np.ndarray, study: np.ndarray, n_studies: int):
        self.ijk = np.asarray(ijk, dtype=np.int32)
        self.study = np.asarray(study)
        self.n_studies = int(n_studies)
        self.total = self.count(np.ones(self.n_studies, dtype=bool))

    def count(self, selected: np.ndarray) -> np.ndarray:
        """Per brain voxel, the selected studies with a focus within 10 mm."""
        from nimare.meta.utils import compute_kda_ma

        keep = np.asarray(selected, dtype=bool)[self.study]
        if not keep.any():
            return np.zeros(int((np.asarray(brain_mask_img().dataobj) > 0).sum()))
        return np.asarray(
            compute_kda_ma(
                brain_mask_img(),
                self.ijk[keep],
                r=SPHERE_MM,
                value=1,
                exp_idx=self.study[keep],
                sum_overlap=False,
                sum_across_studies=True,
            ),
            dtype=float,
        )

    def association(self, selected: np.ndarray) -> Association:
        """The selected studies against all the others (NiMARE MKDAChi2's ``association``)."""
        from nimare.stats import two_way_counts

        selected = np.asarray(selected, dtype=bool)
        n_selected = int(selected.sum())
        n_unselected = self.n_studies - n_selected
        active = self.count(selected)
        other = self.total - active
        chi2 = two_way_counts(active, other, n_selected, n_unselected)
        p = stats.chi2.sf(chi2, 1)
        sign = np.sign(active / n_selected - other / n_unselected)
        return Association(np.sqrt(chi2) * sign, p, n_selected, n_unselected)
