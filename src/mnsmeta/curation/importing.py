"""Adding studies typed from papers: Sleuth text files and NIMADS studysets into ``coordinates/``.

Each block of a Sleuth file, and each analysis of a NIMADS study, is one contrast: its foci go
to ``manual/<file>.tsv`` under the contrast's label, the study gets a record in
``records/<group>.tsv``, and each contrast a line in ``contrasts/<file>.tsv`` with the kind its
label (or the studyset's metadata) states. Labels that state no kind plainly (``SAD vs HC``,
``faces > shapes``) are imported as ``unknown`` and listed for the curator to set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mnsmeta.curation.contrasts import (
    CONTRAST_COLUMNS,
    CONTRAST_OPTIONAL,
    KINDS,
    UNKNOWN,
    infer_kind,
)
from mnsmeta.curation.records import (
    DESIGNS,
    MANUAL_COLUMNS,
    MODALITIES,
    RECORD_COLUMNS,
    RECORD_OPTIONAL,
    SPACES,
    load_curation,
)
from mnsmeta.curation.sleuth import read_sleuth
from mnsmeta.errors import MnsmetaInputError, Problem, errors_in
from mnsmeta.filesystem import atomic


def study_id_from_name(name: str) -> str:
    """Turn a study name (``Smith et al., 2010``) into an id (``smith_et_al_2010``)."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
    return slug or "study"


def _format_number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else repr(float(value))


@dataclass
class ImportedContrast:
    """One contrast read from a Sleuth block or a NIMADS analysis."""

    label: str
    kind: str
    kind_read: str  # "metadata", "label" or "" (not stated: unknown)
    sample_size: int | None
    space: str
    foci: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass
class ImportedStudy:
    """One study and its contrasts, in the order of the input file."""

    study_id: str
    contrasts: list[ImportedContrast] = field(default_factory=list)

    def add(self, contrast: ImportedContrast) -> None:
        # Two blocks of one study may carry the same label (two tasks): keep both, numbered.
        labels = {c.label for c in self.contrasts}
        label, number = contrast.label, 2
        while label in labels:
            label, number = f"{contrast.label} ({number})", number + 1
        contrast.label = label
        self.contrasts.append(contrast)


def _kind_of(label: str) -> tuple[str, str]:
    kind = infer_kind(label)
    return kind, ("label" if kind != UNKNOWN else "")


def studies_from_sleuth(path: Path, warnings: list[Problem] | None = None) -> list[ImportedStudy]:
    """The studies of a Sleuth file: one contrast per block (``// Study: contrast``).

    Warnings (a repeated focus, counted once; a focus outside the brain mask, kept) are
    appended to ``warnings``.

    Raises
    ------
    MnsmetaInputError
        With every problem of the file if any is an error (nothing is imported then).
    """
    problems: list[Problem] = []
    experiments = read_sleuth(path, problems)
    errors = errors_in(problems)
    if errors:
        raise MnsmetaInputError(f"{path}: {len(errors)} error(s); nothing imported", problems)
    if warnings is not None:
        warnings.extend(problems)
    studies: dict[str, ImportedStudy] = {}
    for experiment in experiments:
        study_id = study_id_from_name(experiment.study)
        study = studies.setdefault(study_id, ImportedStudy(study_id))
        kind, read = _kind_of(experiment.contrast)
        study.add(
            ImportedContrast(
                experiment.contrast,
                kind,
                read,
                experiment.sample_size,
                experiment.space,
                list(experiment.foci),
            )
        )
    return list(studies.values())


def studies_from_nimads(path: Path) -> list[ImportedStudy]:
    """The studies of a NIMADS studyset (NeuroStore's and NiMARE's JSON), read through
    NiMARE's own :class:`~nimare.nimads.Studyset`: one contrast per analysis.

    A contrast's kind is its analysis's ``metadata.kind`` when that is one of ours, else what
    its name states; its N is the first of ``metadata.sample_sizes``.
    """
    document = read_studyset(path)
    studies = []
    for number, entry in enumerate(document.get("studies") or [], start=1):
        name = entry.get("name") or entry.get("id") or f"study {number}"
        study = ImportedStudy(study_id_from_name(str(name)))
        for analysis in entry.get("analyses") or []:
            label = str(analysis.get("name") or analysis.get("id") or "1")
            metadata = analysis.get("metadata") or {}
            kind, read = metadata.get("kind"), "metadata"
            if kind not in KINDS or kind == UNKNOWN:
                kind, read = _kind_of(label)
            sizes = metadata.get("sample_sizes") or [metadata.get("sample_size")]
            sizes = [int(s) for s in sizes if s is not None and float(s) > 0]
            points = analysis.get("points") or []
            spaces = {_space(point.get("space"), path, label) for point in points}
            if len(spaces) > 1:
                raise MnsmetaInputError(
                    f"{path}: analysis {label!r} of {name!r} mixes spaces {sorted(spaces)}: "
                    "give each analysis's points in one space"
                )
            study.add(
                ImportedContrast(
                    label,
                    kind,
                    read,
                    sizes[0] if sizes else None,
                    spaces.pop() if spaces else "MNI",
                    [tuple(float(v) for v in point["coordinates"]) for point in points],
                )
            )
        studies.append(study)
    problems = [
        Problem(str(path), None, f"study {s.study_id!r}: no analysis with points", "remove it")
        for s in studies
        if not any(c.foci for c in s.contrasts)
    ]
    problems += [
        Problem(
            str(path),
            None,
            f"study {s.study_id!r}: no sample size in any analysis's metadata",
            "give metadata.sample_sizes (the number of participants)",
        )
        for s in studies
        if not any(c.sample_size for c in s.contrasts)
    ]
    if problems or not studies:
        raise MnsmetaInputError(
            f"{path}: {len(problems) or 'no studies'} problem(s); nothing imported", problems
        )
    return studies


def _space(value, path: Path, label: str) -> str:
    text = str(value or "MNI").upper()
    space = "TAL" if text.startswith("TAL") else text
    if space not in SPACES:
        raise MnsmetaInputError(
            f"{path}: analysis {label!r}: unknown space {value!r}: give MNI or TAL (Talairach)"
        )
    return space


def import_studies(
    input_file: Path,
    coordinates_dir: Path,
    group: str,
    modality: str = "task_fmri",
    design: str = "patients_vs_controls",
    source_text: str = "",
) -> list[str]:
    """Import a Sleuth text file (``.txt``) or a NIMADS studyset (``.json``) as typed-in studies.

    Parameters
    ----------
    input_file : Path
        The Sleuth or NIMADS file.
    coordinates_dir : Path
        The ``coordinates/`` folder.
    group, modality, design : str
        Curation fields given to every imported study.
    source_text : str
        Where the foci were read (citation, table); recorded as the sample size's and the
        contrasts' source.

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
    warnings: list[Problem] = []
    if input_file.suffix.lower() == ".json":
        studies = studies_from_nimads(input_file)
    else:
        studies = studies_from_sleuth(input_file, warnings)
    existing = load_curation(coordinates_dir)
    taken = {r.study_id for r in existing.records if r.group == group}
    clash = sorted({s.study_id for s in studies} & taken)
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
    for study in studies:
        for contrast in study.contrasts:
            for focus in contrast.foci:
                manual_lines.append(
                    "\t".join(
                        [study.study_id, contrast.label, contrast.space, source]
                        + [_format_number(v) for v in focus]
                    )
                )
            note = {
                "metadata": "kind from the studyset's metadata",
                "label": "kind read from the label",
                "": "kind not stated by the label: set it",
            }[contrast.kind_read]
            fields = {
                "study_id": study.study_id,
                "group": group,
                "contrast": contrast.label,
                "kind": contrast.kind,
                "source": source,
                "note": note,
            }
            contrast_lines.append("\t".join(fields.get(c, "") for c in contrast_columns))
            if contrast.kind == UNKNOWN:
                unknown.append(f"{study.study_id}: {contrast.label!r}")
        n_total = max((c.sample_size or 0) for c in study.contrasts) or None
        fields = {
            "study_id": study.study_id,
            "group": group,
            "modality": modality,
            "design": design,
            "status": "included",
            "n_total": str(n_total or ""),
            "n_source": source,
            "source_db": "manual",
            "note": f"imported from {input_file.name} ({len(study.contrasts)} contrast(s))",
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


def read_studyset(path: Path) -> dict:
    """A NIMADS studyset file as NiMARE reads it (its own ``Studyset``, then ``to_dict``)."""
    import warnings

    from nimare.nimads import Studyset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Studyset(str(path)).to_dict()
    except Exception as error:  # NiMARE raises several types for malformed documents
        raise MnsmetaInputError(
            f"{path}: not a NIMADS studyset that NiMARE can read ({type(error).__name__}: "
            f"{error}): export it from NeuroStore or NiMARE (Studyset.to_nimads)"
        ) from error
