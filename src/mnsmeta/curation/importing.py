"""Adding studies typed from papers: Sleuth text files into ``coordinates/``."""

from __future__ import annotations

import re
from pathlib import Path

from mnsmeta.curation.records import (
    DESIGNS,
    MANUAL_COLUMNS,
    MODALITIES,
    RECORD_COLUMNS,
    RECORD_OPTIONAL,
    load_curation,
)
from mnsmeta.curation.sleuth import read_sleuth
from mnsmeta.errors import MnsmetaInputError, Problem
from mnsmeta.filesystem import atomic


def study_id_from_name(name: str) -> str:
    """Turn a Sleuth study name (``Smith et al., 2010``) into an id (``smith_et_al_2010``)."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
    return slug or "study"


def _format_number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else repr(float(value))


def import_sleuth(
    sleuth_file: Path,
    coordinates_dir: Path,
    group: str,
    modality: str = "task_fmri",
    design: str = "patients_vs_controls",
    source_text: str = "",
) -> list[str]:
    """Import a Sleuth file's experiments as manually entered studies.

    Contrasts of one study (same text before ``:`` in the header) become one study with
    several ``experiment`` labels, merged at analysis time into one ALE experiment. The
    study's N is the largest ``Subjects`` of its contrasts.

    Parameters
    ----------
    sleuth_file : Path
        The Sleuth text file.
    coordinates_dir : Path
        The ``coordinates/`` folder.
    group, modality, design : str
        Curation fields given to every imported study.
    source_text : str
        Where the foci were read (citation, table); recorded as the sample size source.

    Returns
    -------
    list of str
        Messages describing what was written.

    Raises
    ------
    MnsmetaInputError
        If the Sleuth file has problems, or its studies are already curated.
    """
    if modality not in MODALITIES:
        raise MnsmetaInputError(
            f"unknown modality {modality!r}: use one of {', '.join(MODALITIES)}"
        )
    if design not in DESIGNS:
        raise MnsmetaInputError(f"unknown design {design!r}: use one of {', '.join(DESIGNS)}")
    problems: list[Problem] = []
    experiments = read_sleuth(sleuth_file, problems)
    if problems:
        raise MnsmetaInputError(
            f"{sleuth_file}: {len(problems)} problem(s); nothing imported", problems
        )
    existing = load_curation(coordinates_dir)
    taken = {r.study_id for r in existing.records if r.group == group}
    studies: dict[str, list] = {}
    for experiment in experiments:
        studies.setdefault(study_id_from_name(experiment.study), []).append(experiment)
    clash = sorted(set(studies) & taken)
    if clash:
        raise MnsmetaInputError(
            f"{sleuth_file}: already curated in group {group}: {', '.join(clash)}: "
            "rename the study in the Sleuth header or edit the existing record"
        )
    manual_path = Path(coordinates_dir) / "manual" / f"{study_id_from_name(sleuth_file.stem)}.tsv"
    if manual_path.exists():
        raise MnsmetaInputError(
            f"{manual_path}: already exists: rename the Sleuth file or merge by hand"
        )
    records_path = Path(coordinates_dir) / "records" / f"{group.lower()}.tsv"
    source = source_text or f"Sleuth file {sleuth_file.name}"

    manual_lines = ["\t".join(MANUAL_COLUMNS)]
    record_lines = []
    for study_id, contrasts in studies.items():
        for experiment in contrasts:
            for focus in experiment.foci:
                manual_lines.append(
                    "\t".join(
                        [study_id, experiment.contrast, experiment.space, source]
                        + [_format_number(v) for v in focus]
                    )
                )
        n_total = max(experiment.sample_size for experiment in contrasts)
        fields = {
            "study_id": study_id,
            "group": group,
            "modality": modality,
            "design": design,
            "status": "included",
            "n_total": str(n_total),
            "n_source": source,
            "source_db": "manual",
            "note": f"imported from {sleuth_file.name} ({len(contrasts)} contrast(s))",
        }
        record_lines.append("\t".join(fields.get(c, "") for c in RECORD_COLUMNS + RECORD_OPTIONAL))

    manual_path.parent.mkdir(parents=True, exist_ok=True)
    records_path.parent.mkdir(parents=True, exist_ok=True)
    old_records = records_path.read_text(encoding="utf-8") if records_path.exists() else ""
    if not old_records.strip():
        old_records = "\t".join(RECORD_COLUMNS + RECORD_OPTIONAL) + "\n"
    elif not old_records.endswith("\n"):
        old_records += "\n"
    # Write both files beside their targets first, then rename: never half an import.
    with atomic(manual_path) as manual_tmp, atomic(records_path) as records_tmp:
        manual_tmp.write_text("\n".join(manual_lines) + "\n", encoding="utf-8")
        records_tmp.write_text(old_records + "\n".join(record_lines) + "\n", encoding="utf-8")
    n_foci = len(manual_lines) - 1
    return [
        f"wrote {manual_path}: {n_foci} foci of {len(studies)} stud(ies)",
        f"appended {len(record_lines)} record(s) to {records_path}",
        "check the new records (modality, design, sample sizes), then run `mnsmeta validate`",
    ]
