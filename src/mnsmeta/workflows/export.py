"""``mnsmeta export``: an analysis's experiments in the field's formats."""

from __future__ import annotations

import json
from pathlib import Path

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.curation.sleuth import write_sleuth
from mnsmeta.filesystem import atomic

FORMATS = ("sleuth", "nimare")


def export_experiments(experiments: ExperimentSet, path: Path, format_: str = "sleuth") -> Path:
    """Write the exact foci and sample sizes (MNI) as Sleuth text or NiMARE dataset JSON.

    The Sleuth file has no comment block: GingerALE and NiMARE read every ``//`` line
    between experiments as the start of an experiment.
    """
    if format_ not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {format_!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic(path) as temporary:
        if format_ == "sleuth":
            write_sleuth(temporary, experiments.to_sleuth())
        else:
            temporary.write_text(json.dumps(experiments.to_nimare_dict(), indent=1))
    return path
