"""From curation records to ALE experiments: selection, merging, space, sample sizes.

One study is one experiment (Turkeltaub et al., 2012): all contrasts a study reports for a
group are pooled, so that the same participants never enter an analysis twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta import database
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.records import Curation, StudyRecord
from mnsmeta.sleuth import SleuthExperiment

EXPERIMENT_COLUMNS = [
    "experiment_id",
    "group",
    "source",
    "n_foci",
    "sample_size",
    "sample_size_rule",
    "n_patients",
    "n_controls",
    "n_total",
    "n_source",
    "reported_space",
    "space_rule",
    "modality",
    "design",
    "direction",
]


@dataclass
class ExperimentSet:
    """The experiments of one group and their foci, ready for ALE.

    Attributes
    ----------
    group : str
        Group name (SAD, BPD, MNS).
    experiments : pandas.DataFrame
        One row per experiment (see ``EXPERIMENT_COLUMNS``), indexed by ``experiment_id``.
    foci : pandas.DataFrame
        One row per focus: ``experiment_id``, ``x``, ``y``, ``z`` (MNI), ``table_id``.
    fallback_sample_size : int or None
        The N given to experiments whose sample size was not curated.
    """

    group: str
    experiments: pd.DataFrame
    foci: pd.DataFrame
    fallback_sample_size: int | None

    def to_sleuth(self) -> list[SleuthExperiment]:
        """Return the experiments as Sleuth experiments in MNI (the exact foci used)."""
        out = []
        for experiment_id, row in self.experiments.iterrows():
            foci = self.foci.loc[self.foci["experiment_id"] == experiment_id, ["x", "y", "z"]]
            name = f"{experiment_id}: {self.group} {row['source']}"
            out.append(
                SleuthExperiment(
                    name,
                    int(row["sample_size"]),
                    "MNI",
                    [tuple(map(float, focus)) for focus in foci.to_numpy()],
                )
            )
        return out

    def to_nimare_dict(self) -> dict:
        """Return the NiMARE dataset dictionary (one contrast per study, MNI, sample size)."""
        source = {}
        for experiment_id, row in self.experiments.iterrows():
            foci = self.foci.loc[self.foci["experiment_id"] == experiment_id]
            source[str(experiment_id)] = {
                "contrasts": {
                    "1": {
                        "coords": {
                            "space": "MNI",
                            "x": foci["x"].tolist(),
                            "y": foci["y"].tolist(),
                            "z": foci["z"].tolist(),
                        },
                        "metadata": {"sample_sizes": [int(row["sample_size"])]},
                    }
                }
            }
        return source

    def to_dataset(self):
        """Return a :class:`nimare.dataset.Dataset` on the MNI152 2 mm grid."""
        from nimare.dataset import Dataset, _quiet_dataset_deprecation

        with _quiet_dataset_deprecation():
            return Dataset(self.to_nimare_dict(), target="mni152_2mm")

    def to_studyset(self):
        """Return a :class:`nimare.nimads.Studyset` (NiMARE's newer container)."""
        from nimare.dataset import _quiet_dataset_deprecation
        from nimare.nimads import Studyset

        with _quiet_dataset_deprecation():
            return Studyset.from_dataset(self.to_dataset())


def _manual_foci(curation: Curation, record: StudyRecord) -> pd.DataFrame:
    foci = [f for f in curation.manual_foci if f.study_id == record.study_id]
    xyz = np.array([[f.x, f.y, f.z] for f in foci], dtype=float).reshape(-1, 3)
    spaces = np.array([f.space for f in foci])
    mni = database.to_mni(xyz, spaces)
    return pd.DataFrame(
        {
            "experiment_id": record.study_id,
            "x": mni[:, 0],
            "y": mni[:, 1],
            "z": mni[:, 2],
            "table_id": [f.table for f in foci],
            "reported_space": spaces,
            "space_rule": [database.SPACE_RULES[s] for s in spaces],
        }
    )


def build_experiments(
    curation: Curation,
    group: str,
    fallback: str | int = "median",
    modalities: tuple[str, ...] = (),
) -> ExperimentSet:
    """Select a group's included studies and turn them into ALE experiments.

    Parameters
    ----------
    curation : Curation
        Records and manual foci from ``coordinates/``.
    group : str
        SAD, BPD or MNS.
    fallback : "median" or int
        N given to experiments without a curated sample size: the median N of the group's
        experiments that have one (rounded to a whole number), or a fixed number.
    modalities : tuple of str
        Keep only records of these modalities (default: every included record).

    Returns
    -------
    ExperimentSet

    Raises
    ------
    MnsmetaInputError
        If the group has no included study, or an included study has no foci.
    """
    records = [r for r in curation.for_group(group) if not modalities or r.modality in modalities]
    if not records:
        raise MnsmetaInputError(
            f"group {group}: no included study in coordinates/records/: "
            "set status to 'included' for the studies to analyse"
        )
    database_records = [r for r in records if not r.is_manual]
    foci_parts = []
    if database_records:
        merged = database.merged_foci(
            source_overrides={r.pmid: r.source_db for r in database_records if r.source_db},
            space_overrides={r.pmid: r.space for r in database_records if r.space},
            pmids=[r.pmid for r in database_records],
        )
        merged["experiment_id"] = merged["pmid"].astype(str)
        foci_parts.append(merged)
    foci_parts += [_manual_foci(curation, r) for r in records if r.is_manual]
    foci = pd.concat(foci_parts, ignore_index=True)
    counts = foci.groupby("experiment_id").size()
    empty = [r for r in records if counts.get(r.study_id, 0) == 0]
    if empty:
        raise MnsmetaInputError(
            f"group {group}: {len(empty)} included experiment(s) have zero foci",
            [_zero_foci_problem(record) for record in empty],
        )

    known = [r.sample_size()[0] for r in records if r.sample_size()[0] is not None]
    if fallback == "median":
        fallback_n = int(np.round(np.median(known))) if known else None
        fallback_rule = f"fallback: median N of {len(known)} experiments with N"
    else:
        fallback_n, fallback_rule = int(fallback), "fallback: fixed N"
    rows = []
    for record in records:
        n, rule = record.sample_size()
        if n is None:
            if fallback_n is None:
                raise MnsmetaInputError(
                    f"group {group}: no experiment has a sample size, so there is no median "
                    "to fall back on: curate at least one N, or give a fixed fallback"
                )
            n, rule = fallback_n, fallback_rule
        study_foci = foci[foci["experiment_id"] == record.study_id]
        rows.append(
            {
                "experiment_id": record.study_id,
                "group": group,
                "source": "manual" if record.is_manual else study_foci["source"].iloc[0],
                "n_foci": len(study_foci),
                "sample_size": n,
                "sample_size_rule": rule,
                "n_patients": record.n_patients,
                "n_controls": record.n_controls,
                "n_total": record.n_total,
                "n_source": record.n_source,
                "reported_space": study_foci["reported_space"].iloc[0],
                "space_rule": study_foci["space_rule"].iloc[0],
                "modality": record.modality,
                "design": record.design,
                "direction": record.direction,
            }
        )
    experiments = pd.DataFrame(rows, columns=EXPERIMENT_COLUMNS).set_index("experiment_id")
    foci = foci[["experiment_id", "x", "y", "z", "table_id"]].reset_index(drop=True)
    return ExperimentSet(group, experiments, foci, fallback_n)


def _zero_foci_problem(record: StudyRecord):
    from mnsmeta.errors import Problem

    return Problem(
        record.file,
        record.line,
        f"experiment {record.study_id} has zero foci in the chosen database",
        "set source_db to the other database, enter its foci by hand, or exclude it "
        "(reason no_coordinates)",
    )


def combine(sets: list[ExperimentSet], name: str) -> ExperimentSet:
    """Pool experiment sets of several groups; a study curated in more than one counts once.

    Each experiment keeps the sample size (and fallback) of the group it came from first.
    """
    experiments = pd.concat([s.experiments for s in sets])
    experiments = experiments[~experiments.index.duplicated(keep="first")]
    foci = pd.concat([s.foci.assign(group=s.group) for s in sets], ignore_index=True)
    first_group = experiments["group"]
    foci = foci[foci["group"] == foci["experiment_id"].map(first_group)].drop(columns="group")
    return ExperimentSet(name, experiments, foci.reset_index(drop=True), None)
