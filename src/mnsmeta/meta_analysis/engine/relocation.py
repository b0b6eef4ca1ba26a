"""ALE values computed directly from voxel indices, for the many reruns of the null models.

The kernels are NiMARE's (``get_ale_kernel``) and are stamped by the numba code of
:mod:`.kernels`; :meth:`AleComputer.ale_reference` computes the same values through
NiMARE's ``compute_ale_ma`` and a sum of logarithms, and tests hold the two (and NiMARE's
ALE) equal.
"""

from __future__ import annotations

import functools

import numpy as np


class AleComputer:
    """Compute ALE maps inside a mask for foci given as voxel indices.

    Parameters
    ----------
    mask_img : nibabel image
        The brain mask (NiMARE's default: MNI152 2 mm brain).
    null_space : {"brain", "gm"}
        Where random foci are drawn: every brain voxel (NiMARE's default), or only voxels
        with MNI152 grey-matter probability above 0.1 (NiMARE's ``mask_coverage="gm"``).

    Attributes
    ----------
    mask : 3D bool array
    null_ijk : (n_voxels, 3) int array
        Voxel indices from which random foci are drawn.
    """

    def __init__(self, mask_img, null_space: str = "brain"):
        self.mask_img = mask_img
        self.mask = np.asarray(mask_img.get_fdata()) > 0
        self.null_space = null_space
        self.null_ijk = np.argwhere(null_space_mask(mask_img, null_space)).astype(np.int32)

    def ale(self, ijk: np.ndarray, experiment: np.ndarray, sample_sizes: np.ndarray) -> np.ndarray:
        """Return ALE values for every mask voxel (NiMARE's masked order).

        Parameters
        ----------
        ijk : (n_foci, 3) int array
            Voxel index of each focus.
        experiment : (n_foci,) int array
            Experiment number of each focus.
        sample_sizes : (n_foci,) int array
            Sample size of each focus's experiment (sets its kernel width).
        """
        from mnsmeta.meta_analysis.engine.kernels import KernelStamper

        # The stamper (kernels, work volumes) is built once per set of experiments.
        key = (np.asarray(experiment).tobytes(), np.asarray(sample_sizes).tobytes())
        if getattr(self, "_stamper_key", None) != key:
            self._stamper = KernelStamper(self.mask_img, experiment, sample_sizes)
            self._stamper_key = key
        return self._stamper.ale(ijk)

    def region_stamper(self, experiment: np.ndarray, sample_sizes: np.ndarray, region):
        """A :class:`.kernels.RegionStamper`: the values of :meth:`ale` at ``region``'s brain
        voxels only (C order), for these experiments; its ``ale(ijk)`` is cheaper than a
        whole map."""
        from mnsmeta.meta_analysis.engine.kernels import RegionStamper

        return RegionStamper(self.mask_img, experiment, sample_sizes, region)

    def ale_reference(
        self, ijk: np.ndarray, experiment: np.ndarray, sample_sizes: np.ndarray
    ) -> np.ndarray:
        """The same values through NiMARE's ``compute_ale_ma`` (slower; for checks)."""
        from nimare.meta.utils import compute_ale_ma

        ma, _, _ = compute_ale_ma(
            self.mask_img,
            np.asarray(ijk, dtype=np.int32),
            exp_idx=np.asarray(experiment),
            sample_sizes=np.asarray(sample_sizes),
            use_dict=True,
        )
        log_complement = np.bincount(
            ma.indices, weights=np.log1p(-ma.data.astype(np.float64)), minlength=ma.shape[1]
        )
        return -np.expm1(log_complement)

    def random_foci(self, rng: np.random.Generator, n_foci: int) -> np.ndarray:
        """Draw foci uniformly in the null space (as NiMARE's Monte Carlo null does)."""
        return self.null_ijk[rng.integers(0, len(self.null_ijk), n_foci)]


#: NiMARE's grey-matter threshold for ``mask_coverage="gm"``.
GM_THRESHOLD = 0.1


def null_space_mask(mask_img, null_space: str = "brain") -> np.ndarray:
    """Voxels where random foci may fall: the brain mask, or its grey matter.

    The grey-matter version follows NiMARE (``mask_coverage="gm"``): nilearn's MNI152
    grey-matter template, resampled to the mask's grid, above 0.1, within the mask.
    """
    brain = np.asarray(mask_img.get_fdata()) > 0
    if null_space == "brain":
        return brain
    if null_space != "gm":
        raise ValueError(f"null_space must be 'brain' or 'gm', not {null_space!r}")
    return brain & _grey_matter(tuple(brain.shape), np.asarray(mask_img.affine).tobytes())


@functools.lru_cache(maxsize=4)
def _grey_matter(shape: tuple, affine: bytes) -> np.ndarray:
    """The template's grey matter above the threshold on a grid (resampled once per grid:
    0.7 s each, and the overlap and robustness stages build dozens of computers)."""
    import nibabel as nib
    from nilearn import datasets
    from nilearn.image import resample_to_img

    grid = nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), np.frombuffer(affine).reshape(4, 4))
    grey = resample_to_img(
        datasets.load_mni152_gm_template(resolution=2),
        grid,
        interpolation="continuous",
        force_resample=True,
        copy_header=True,
    )
    mask = np.asarray(grey.dataobj) > GM_THRESHOLD
    mask.setflags(write=False)
    return mask
