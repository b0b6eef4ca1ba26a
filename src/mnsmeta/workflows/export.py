"""``mnsmeta export``: an analysis's experiments in the field's formats."""

from __future__ import annotations

import json
from pathlib import Path

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.curation.sleuth import write_sleuth
from mnsmeta.filesystem import atomic

FORMATS = ("sleuth", "nimare", "nimads")


def export_experiments(experiments: ExperimentSet, path: Path, format_: str = "sleuth") -> Path:
    """Write the exact foci and sample sizes (MNI) as Sleuth text, NiMARE dataset JSON or a
    NIMADS studyset.

    The Sleuth file has no comment block: GingerALE and NiMARE read every ``//`` line
    between experiments as the start of an experiment. The studyset is built by NiMARE's own
    :class:`~nimare.nimads.Studyset` from :func:`to_nimads_dict`.
    """
    if format_ not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format_!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic(path) as temporary:
        if format_ == "sleuth":
            write_sleuth(temporary, experiments.to_sleuth())
        elif format_ == "nimads":
            temporary.write_text(json.dumps(studyset_dict(experiments), indent=1))
        else:
            temporary.write_text(json.dumps(experiments.to_nimare_dict(), indent=1))
    return path


def to_nimads_dict(experiments: ExperimentSet) -> dict:
    """A NIMADS studyset: one study per experiment, one analysis per contrast.

    Each analysis carries its contrast's label (its name), its kind and the experiment's N
    (``metadata``), and its foci in MNI.
    """
    studies = []
    for (experiment_id, row), foci in zip(
        experiments.experiments.iterrows(), experiments.foci_by_experiment(), strict=True
    ):
        analyses = []
        for label, contrast in foci.groupby("contrast", sort=False):
            analyses.append(
                {
                    "id": f"{experiment_id}-{len(analyses) + 1}",
                    "name": str(label),
                    "metadata": {
                        "sample_sizes": [int(row["sample_size"])],
                        "kind": str(contrast["kind"].iloc[0]),
                    },
                    "points": [
                        {"coordinates": [float(v) for v in xyz], "space": "MNI"}
                        for xyz in contrast[["x", "y", "z"]].to_numpy()
                    ],
                }
            )
        studies.append(
            {"id": str(experiment_id), "name": str(experiment_id), "analyses": analyses}
        )
    return {"id": f"mnsmeta-{experiments.group}", "name": experiments.group, "studies": studies}


def studyset_dict(experiments: ExperimentSet) -> dict:
    """:func:`to_nimads_dict` as NiMARE's ``Studyset`` writes it (checked by NiMARE)."""
    from nimare.nimads import Studyset

    from mnsmeta.meta_analysis.nimare_adapter import quiet

    with quiet():
        return Studyset(to_nimads_dict(experiments)).to_dict()
