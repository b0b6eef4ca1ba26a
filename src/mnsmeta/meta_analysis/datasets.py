"""The one builder of NiMARE datasets from our experiment model."""

from __future__ import annotations

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.meta_analysis.nimare_adapter import quiet


def to_dataset(experiments: ExperimentSet, *, positional_ids: bool = False):
    """Return a :class:`nimare.dataset.Dataset` of the experiments, on the MNI152 2 mm grid.

    Parameters
    ----------
    experiments : ExperimentSet
        Foci in MNI mm with each experiment's sample size.
    positional_ids : bool
        Name the experiments ``e0000``, ``e0001``... in analysis order instead of by their
        ids. NiMARE sorts a dataset by id and multiplies the MA maps in that order, so
        positional ids keep the order of the experiment set: the robustness checks need it,
        so that subsets and extensions of a set (experiments left out, noise experiments
        added after the real ones) multiply in the same order as the set itself.

    Returns
    -------
    nimare.dataset.Dataset
        One study per experiment with one contrast (``"1"``): NiMARE's ids are
        ``<study>-1``.
    """
    from nimare.dataset import Dataset

    source = experiments.to_nimare_dict()
    if positional_ids:
        source = {f"e{e:04d}": study for e, study in enumerate(source.values())}
    with quiet():
        return Dataset(source, target="mni152_2mm")


def to_studyset(experiments: ExperimentSet):
    """Return a :class:`nimare.nimads.Studyset` (NiMARE's newer container)."""
    from nimare.nimads import Studyset

    with quiet():
        return Studyset.from_dataset(to_dataset(experiments))
