"""Adding studies typed from papers: any foci file (Sleuth, NIMADS, table) into ``coordinates/``.

Each experiment of the file (a Sleuth block, a NIMADS analysis, a table's study and contrast)
is one contrast: its foci go to ``manual/<file>.tsv`` under the contrast's label, the study
gets a record in ``records/<group>.tsv``, and each contrast a line in ``contrasts/<file>.tsv``
with the kind its label (or the studyset's metadata) states. Labels that state no kind
plainly (``SAD vs HC``, ``faces > shapes``) are imported as ``unknown`` and listed for the
curator to set.
"""

from __future__ import annotations

from pathlib import Path

from mnsmeta.curation.contrasts import CONTRAST_COLUMNS, CONTRAST_OPTIONAL, UNKNOWN, infer_kind
from mnsmeta.curation.foci_files import (
    FociExperiment,
    read_foci_file,
    require_experiments,
    study_id_from_name,
)
from mnsmeta.curation.records import (
    DESIGNS,
    MANUAL_COLUMNS,
    MODALITIES,
    RECORD_COLUMNS,
    RECORD_OPTIONAL,
    load_curation,
)
from mnsmeta.errors import MnsmetaInputError, Problem
from mnsmeta.filesystem import atomic


def _format_number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else repr(float(value))


def studies_of(experiments: list[FociExperiment]) -> dict[str, list[tuple[str, FociExperiment]]]:
    """The experiments by study id, each with its contrast label, in file order.

    A label is the experiment's contrast (``"1"`` when it has none); two experiments of one
    study with the same label (two tasks) are both kept, the second numbered.
    """
    studies: dict[str, list[tuple[str, FociExperiment]]] = {}
    for experiment in experiments:
        contrasts = studies.setdefault(study_id_from_name(experiment.study), [])
        labels = {label for label, _ in contrasts}
        base = experiment.contrast or "1"
        label, number = base, 2
        while label in labels:
            label, number = f"{base} ({number})", number + 1
        contrasts.append((label, experiment))
    return studies


def _kind_of(experiment: FociExperiment, label: str) -> tuple[str, str]:
    """A contrast's kind and where it was read: ``"metadata"``, ``"label"`` or ``""``."""
    if experiment.kind:
        return experiment.kind, "metadata"
    kind = infer_kind(label)
    return kind, ("label" if kind != UNKNOWN else "")


def import_studies(
    input_file: Path,
    coordinates_dir: Path,
    group: str,
    modality: str = "task_fmri",
    design: str = "patients_vs_controls",
    source_text: str = "",
    columns=None,
) -> list[str]:
    """Import a Sleuth text file, a NIMADS studyset (``.json``) or a foci table (``.csv``,
    ``.tsv``, ``.xlsx``) as typed-in studies.

    Parameters
    ----------
    input_file : Path
        The foci file.
    coordinates_dir : Path
        The ``coordinates/`` folder.
    group, modality, design : str
        Curation fields given to every imported study.
    source_text : str
        Where the foci were read (citation, table); recorded as the sample size's and the
        contrasts' source.
    columns : dict or sequence of str, optional
        For a table: which column holds what (``["study=Author", "n=Subjects"]``).

    Returns
    -------
    list of str
        Messages describing what was written, and the contrasts whose kind is unknown.

    Raises
    ------
    MnsmetaInputError
        If the file has problems, or its studies are already curated.
    """
    if modality not in MODALITIES:
        raise MnsmetaInputError(
            f"unknown modality {modality!r}: use one of {', '.join(MODALITIES)}"
        )
    if design not in DESIGNS:
        raise MnsmetaInputError(f"unknown design {design!r}: use one of {', '.join(DESIGNS)}")
    input_file = Path(input_file)
    problems: list[Problem] = []
    experiments = read_foci_file(input_file, problems, columns)
    warnings = require_experiments(input_file, experiments, problems, "imported")
    studies = studies_of(experiments)
    existing = load_curation(coordinates_dir)
    taken = {r.study_id for r in existing.records if r.group == group}
    clash = sorted(set(studies) & taken)
    if clash:
        raise MnsmetaInputError(
            f"{input_file}: already curated in group {group}: {', '.join(clash)}: "
            "rename the study in the file or edit the existing record"
        )
    stem = study_id_from_name(input_file.stem)
    root = Path(coordinates_dir)
    manual_path = root / "manual" / f"{stem}.tsv"
    contrasts_path = root / "contrasts" / f"{stem}.tsv"
    for path in (manual_path, contrasts_path):
        if path.exists():
            raise MnsmetaInputError(f"{path}: already exists: rename the file or merge by hand")
    records_path = root / "records" / f"{group.lower()}.tsv"
    source = source_text or f"{input_file.name}"

    manual_lines = ["\t".join(MANUAL_COLUMNS)]
    contrast_columns = CONTRAST_COLUMNS + CONTRAST_OPTIONAL
    contrast_lines = ["\t".join(contrast_columns)]
    record_lines, unknown = [], []
    for study_id, contrasts in studies.items():
        for label, experiment in contrasts:
            for focus in experiment.foci:
                manual_lines.append(
                    "\t".join(
                        [study_id, label, experiment.space, source]
                        + [_format_number(v) for v in focus]
                    )
                )
            kind, read = _kind_of(experiment, label)
            note = {
                "metadata": "kind from the studyset's metadata",
                "label": "kind read from the label",
                "": "kind not stated by the label: set it",
            }[read]
            fields = {
                "study_id": study_id,
                "group": group,
                "contrast": label,
                "kind": kind,
                "source": source,
                "note": note,
            }
            contrast_lines.append("\t".join(fields.get(c, "") for c in contrast_columns))
            if kind == UNKNOWN:
                unknown.append(f"{study_id}: {label!r}")
        n_total = max((e.sample_size or 0) for _, e in contrasts) or None
        fields = {
            "study_id": study_id,
            "group": group,
            "modality": modality,
            "design": design,
            "status": "included",
            "n_total": str(n_total or ""),
            "n_source": source,
            "source_db": "manual",
            "note": f"imported from {input_file.name} ({len(contrasts)} contrast(s))",
        }
        record_lines.append(fields)

    old_records = records_path.read_text(encoding="utf-8") if records_path.exists() else ""
    if not old_records.strip():
        old_records = "\t".join(RECORD_COLUMNS + RECORD_OPTIONAL) + "\n"
    elif not old_records.endswith("\n"):
        old_records += "\n"
    # New records follow the file's own header (an older file has fewer optional columns).
    header = next(
        line for line in old_records.splitlines() if line.strip() and not line.startswith("#")
    ).split("\t")
    record_lines = [
        "\t".join(fields.get(c.strip(), "") for c in header) for fields in record_lines
    ]
    # Write every file beside its target first, then rename: never half an import.
    with (
        atomic(manual_path) as manual_tmp,
        atomic(contrasts_path) as contrasts_tmp,
        atomic(records_path) as records_tmp,
    ):
        manual_tmp.write_text("\n".join(manual_lines) + "\n", encoding="utf-8")
        contrasts_tmp.write_text("\n".join(contrast_lines) + "\n", encoding="utf-8")
        records_tmp.write_text(old_records + "\n".join(record_lines) + "\n", encoding="utf-8")
    n_foci = len(manual_lines) - 1
    n_contrasts = len(contrast_lines) - 1
    messages = [str(warning) for warning in warnings]
    messages += [
        f"wrote {manual_path}: {n_foci} foci of {len(studies)} stud(ies)",
        f"wrote {contrasts_path}: {n_contrasts} contrast(s), "
        f"{n_contrasts - len(unknown)} with a kind read from the file",
        f"appended {len(record_lines)} record(s) to {records_path}",
    ]
    if unknown:
        messages.append(
            f"kind unknown for {len(unknown)} contrast(s), set it in {contrasts_path}: "
            + "; ".join(unknown)
        )
    messages.append(
        "check the new records (modality, design, sample sizes), then run `mnsmeta validate`"
    )
    return messages
