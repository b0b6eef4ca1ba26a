"""Curation records and manually entered coordinates: the files in ``coordinates/``.

Two kinds of tab-separated file (see ``coordinates/README.md`` for the full format):

* ``coordinates/records/*.tsv``: one curation record per study and group, saying whether
  the study enters the group's default analysis and why, with sample sizes and where they
  were read;
* ``coordinates/manual/*.tsv``: foci typed in from a paper's table, for studies missing from
  the databases (or badly extracted there), with their space and table number.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnsmeta.curation.contrasts import Contrast, read_contrasts
from mnsmeta.curation.control_ledger import LEDGER_FILE, ControlDecision, read_control_ledger
from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.tsv import Row, participant_count, read_tsv
from mnsmeta.data.space import FAR_OUTSIDE_MM, distance_to_brain, outside_bounding_box, to_mni
from mnsmeta.errors import MnsmetaInputError, Problem, errors_in

MODALITIES = {
    "task_fmri": "task-based fMRI",
    "pet": "task-based PET",
    "rest_fmri": "resting-state fMRI",
    "structural": "VBM, cortical thickness, volumetry",
    "dti": "diffusion imaging",
    "eeg_meg": "EEG or MEG",
    "other": "MRS, SPECT, behavioural, other",
    "unknown": "could not be determined",
}
DESIGNS = {
    "patients_vs_controls": "patients compared with healthy controls",
    "patients_only": "patients without a control group",
    "healthy_only": "healthy participants only",
    "correlation": "correlation with symptoms or traits in one sample",
    "treatment": "pre/post treatment without a control comparison",
    "other": "another design",
}
#: ``awaiting``: not enough could be read to decide (PRISMA 2020's "awaiting
#: classification"): neither included nor excluded, counted on its own row of the flow.
STATUSES = ("included", "excluded", "awaiting")
REASONS = {
    "review": "review or meta-analysis, not a primary study",
    "not_imaging": "EEG/MEG or behavioural only",
    "other_modality": "MRS, SPECT or another non-fMRI/PET method",
    "structural": "structural imaging (VBM, thickness, volume)",
    "dti": "diffusion imaging",
    "resting_state": "resting-state functional imaging",
    "connectivity_only": "task imaging whose results are connectivity or synchrony only, no "
    "activation peaks",
    "off_topic": "matched by terms but not about this group",
    "other_population": "another population (other primary disorder, children for MNS...)",
    "clinical_sample": "MNS reference study in patients rather than healthy adults",
    "subclinical": "trait or subclinical sample, no clinical diagnosis",
    "no_control_group": "no comparison with healthy controls",
    "duplicate_sample": "same participants as another included study",
    "implausible_foci": "database extraction implausible (tables that are not coordinates, too "
    "many foci, foci outside brain)",
    "no_coordinates": "no peak coordinates in either database",
}
#: What a study's tables mix in besides one patient group against one healthy control group
#: at one time point (one healthy group, for an MNS reference). A study whose tables mix any
#: of these (and cannot be separated) enters only the ``mixed_tables_kept`` variant.
TABLE_MIXES = {
    "none": "nothing: one group (against its controls), one time point, activation",
    "other_population": "results of another patient or risk group (psychopathy, MDD, "
    "trauma-exposed controls...)",
    "connectivity": "connectivity analyses (PPI, DCM, functional connectivity) beside activation",
    "treatment": "treatment, pre/post or longitudinal comparisons",
    "age_groups": "independent age groups (adolescents and adults) pooled",
    "unknown": "nothing informative could be read",
}
#: Where a study's peaks come from. ALE's null assumes whole-brain reporting, so ROI/SVC-only
#: studies leave the primary analysis (Mueller et al., 2018) and enter a variant.
COVERAGES = {
    "whole_brain": "whole-brain (voxel-wise) analysis",
    "roi": "a priori regions of interest or small-volume correction only",
    "mixed": "whole-brain results plus ROI/SVC results",
    "unknown": "not stated in what could be read",
}
#: The study's main task, from its title, abstract or terms (for the characteristics table,
#: the paradigm tabulation and paradigm-matched controls).
PARADIGMS = (
    "emotional_faces", "emotional_scenes", "social_feedback", "social_exclusion",
    "self_referential", "emotion_regulation", "pain", "theory_of_mind", "reward", "memory",
    "cognitive_control", "anticipation", "conditioning", "speech", "action_observation",
    "imitation", "observation_execution", "execution", "imagery", "face_observation",
    "face_imitation", "vocal_auditory", "other",
)  # fmt: skip
#: The body part that acts or is watched in an MNS-reference task (hand_arm, body, face,
#: voice; mixed when several, unknown when not stated): the curated mirror mask keeps hand,
#: arm and body actions only.
EFFECTORS = ("hand_arm", "body", "face", "voice", "mixed", "unknown")
AGE_GROUPS = ("adults", "adolescents", "children", "older_adults", "mixed", "unknown")
DIRECTIONS = ("", "hyper", "hypo", "mixed", "none")
SPACES = ("MNI", "TAL")
SOURCE_DBS = ("", "neurosynth", "neuroquery", "manual")

RECORD_COLUMNS = ["study_id", "group", "modality", "design", "status", "reason"]
RECORD_OPTIONAL = [
    "n_patients",
    "n_controls",
    "n_total",
    "n_source",
    "direction",
    "space",
    "source_db",
    "flags",
    "note",
    "sample",
    "sample_evidence",
    "table_mix",
    "table_mix_evidence",
    "coverage",
    "coverage_evidence",
    "paradigm",
    "effector",
    "age_group",
    "characteristics_evidence",
    "keep_copy",
]
MANUAL_COLUMNS = ["study_id", "experiment", "space", "table", "x", "y", "z"]


@dataclass
class StudyRecord:
    """One study's curation record for one group."""

    study_id: str
    group: str
    modality: str
    design: str
    status: str
    reason: str = ""
    n_patients: int | None = None
    n_controls: int | None = None
    n_total: int | None = None
    n_source: str = ""
    direction: str = ""
    space: str = ""
    source_db: str = ""
    flags: str = ""
    note: str = ""
    sample: str = ""
    sample_evidence: str = ""
    table_mix: str = ""
    table_mix_evidence: str = ""
    coverage: str = ""
    coverage_evidence: str = ""
    paradigm: str = ""
    effector: str = ""
    age_group: str = ""
    characteristics_evidence: str = ""
    keep_copy: str = ""
    file: str = ""
    line: int = 0

    @property
    def pmid(self) -> int | None:
        """The PMID, for studies identified by one."""
        return int(self.study_id) if self.study_id.isdigit() else None

    @property
    def included(self) -> bool:
        return self.status == "included"

    @property
    def is_manual(self) -> bool:
        return self.source_db == "manual"

    @property
    def mixes(self) -> list[str]:
        """What its tables mix in (``TABLE_MIXES`` other than none and unknown)."""
        return [m for m in self.table_mix.split(";") if m.strip() not in ("", "none", "unknown")]

    @property
    def sample_key(self) -> str:
        """The sample (cohort) its participants belong to: its ``sample``, else itself."""
        return self.sample or f"study:{self.study_id}"

    def admitted(self, admit=()) -> bool:
        """Whether the included study enters an analysis that admits ``admit`` categories.

        The primary analysis (``admit`` empty) takes the included studies whose tables mix
        nothing in (``table_mix``) and whose peaks are not ROI/SVC-only (``coverage``).
        """
        if not self.included:
            return False
        if self.mixes and "mixed_tables" not in admit:
            return False
        return self.coverage != "roi" or "roi_coverage" in admit

    def sample_size(self) -> tuple[int | None, str]:
        """Return the N used for the ALE kernel and the rule that gave it.

        ``n_total`` when stated; otherwise patients plus controls when both are stated;
        otherwise the patients alone (flagged as partial); otherwise None (the analysis then
        applies its documented fallback).
        """
        if self.n_total:
            return self.n_total, "n_total"
        if self.n_patients and self.n_controls:
            return self.n_patients + self.n_controls, "n_patients+n_controls"
        if self.n_patients:
            return self.n_patients, "n_patients only (controls not stated)"
        return None, "missing"


@dataclass
class ManualFocus:
    """One focus typed in from a paper's table."""

    study_id: str
    experiment: str
    space: str
    table: str
    x: float
    y: float
    z: float
    file: str = ""
    line: int = 0


@dataclass
class Curation:
    """Everything read from ``coordinates/``: records, manual foci and the problems found."""

    records: list[StudyRecord] = field(default_factory=list)
    manual_foci: list[ManualFocus] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    contrasts: list[Contrast] = field(default_factory=list)
    #: Categories admitted besides the primary analysis's studies (``mixed_tables``,
    #: ``roi_coverage``): the sensitivity variants ``mixed_tables_kept`` and ``roi_kept``.
    admit: tuple[str, ...] = ()
    #: How the records of one sample enter: ``pool`` (one experiment, the main rule) or
    #: ``first`` (only the sample's first record, a sensitivity variant).
    sample_rule: str = "pool"
    #: The control ledger's rows (``coordinates/controls.tsv``).
    control_decisions: list[ControlDecision] = field(default_factory=list)

    @property
    def rejected_controls(self) -> frozenset[int]:
        """Database studies a reader excluded as controls: never matched again."""
        return frozenset(d.control_pmid for d in self.control_decisions if d.decision == "exclude")

    def for_group(self, group: str, included_only: bool = True) -> list[StudyRecord]:
        """Return the records of one group (by default only those that enter its analysis).

        With ``included_only`` the records are those the analysis takes: included, admitted
        (:meth:`StudyRecord.admitted`), and under the ``first`` sample rule only the first
        record (in file order) of each sample.
        """
        records = [r for r in self.records if r.group == group]
        if not included_only:
            return records
        records = [r for r in records if r.admitted(self.admit)]
        if self.sample_rule == "first":
            seen: set[str] = set()
            records = [r for r in records if not (r.sample_key in seen or seen.add(r.sample_key))]
        return records

    @property
    def errors(self) -> list[Problem]:
        """The problems that stop a run (warnings are read and used as documented)."""
        return errors_in(self.problems)

    def contrasts_of(self, record: StudyRecord) -> list[Contrast]:
        """The curated contrasts of one study in one group."""
        return [
            c for c in self.contrasts if c.study_id == record.study_id and c.group == record.group
        ]


def _choice(row: Row, column: str, allowed, path: str, problems: list[Problem]) -> str:
    value = row[column]
    if value not in allowed:
        shown = ", ".join(repr(a) if a == "" else a for a in allowed)
        problems.append(
            Problem(path, row.line, f"unknown {column} {value!r}", f"use one of {shown}")
        )
    return value


def _record_from_row(row: Row, path: str, problems: list[Problem]) -> StudyRecord:
    study_id = row["study_id"]
    source_db = _choice(row, "source_db", SOURCE_DBS, path, problems)
    if not study_id:
        problems.append(Problem(path, row.line, "empty study_id", "write the study's PMID"))
    elif source_db != "manual" and not study_id.isdigit():
        problems.append(
            Problem(
                path,
                row.line,
                f"PMID {study_id!r} is not an integer",
                "a database study's study_id is its PubMed ID (digits only); a study typed in "
                "from a paper sets source_db to 'manual'",
            )
        )
    record = StudyRecord(
        study_id=study_id,
        group=_choice(row, "group", GROUPS, path, problems),
        modality=_choice(row, "modality", MODALITIES, path, problems),
        design=_choice(row, "design", DESIGNS, path, problems),
        status=_choice(row, "status", STATUSES, path, problems),
        reason=row["reason"],
        n_patients=participant_count(row, "n_patients", path, problems),
        n_controls=participant_count(row, "n_controls", path, problems),
        n_total=participant_count(row, "n_total", path, problems),
        n_source=row["n_source"],
        direction=_choice(row, "direction", DIRECTIONS, path, problems),
        space=_choice(row, "space", ("", *SPACES), path, problems),
        source_db=source_db,
        flags=row["flags"],
        note=row["note"],
        sample=row["sample"],
        sample_evidence=row["sample_evidence"],
        table_mix=_mixes(row, path, problems),
        table_mix_evidence=row["table_mix_evidence"],
        coverage=_choice(row, "coverage", ("", *COVERAGES), path, problems),
        coverage_evidence=row["coverage_evidence"],
        paradigm=_choice(row, "paradigm", ("", *PARADIGMS), path, problems),
        effector=_choice(row, "effector", ("", *EFFECTORS), path, problems),
        age_group=_choice(row, "age_group", ("", *AGE_GROUPS), path, problems),
        characteristics_evidence=row["characteristics_evidence"],
        keep_copy=row["keep_copy"],
        file=path,
        line=row.line,
    )
    for column in ("sample", "table_mix", "coverage"):
        if getattr(record, column) and not getattr(record, f"{column}_evidence"):
            problems.append(
                Problem(
                    path,
                    row.line,
                    f"{column} {getattr(record, column)!r} given without {column}_evidence",
                    f"write in {column}_evidence the evidence level (abstract URL, note, terms, "
                    "metadata, foci) and what decided it",
                )
            )
    if record.reason == "unclear":
        problems.append(
            Problem(
                path,
                row.line,
                "excluded with reason 'unclear'",
                "a study that cannot be decided is not excluded: set status to awaiting "
                "(awaiting classification) and clear the reason",
            )
        )
        return record
    if record.status == "excluded" and record.reason not in REASONS:
        problems.append(
            Problem(
                path,
                row.line,
                f"excluded with reason {record.reason!r}",
                f"give one of {', '.join(REASONS)}",
            )
        )
    if record.status != "excluded" and record.reason:
        problems.append(
            Problem(
                path,
                row.line,
                f"{record.status} but with reason {record.reason!r}",
                "clear the reason, or set status to excluded",
            )
        )
    stated = [record.n_patients, record.n_controls, record.n_total]
    if any(stated) and not record.n_source and not record.is_manual:
        problems.append(
            Problem(
                path,
                row.line,
                "sample size given without n_source",
                "write the URL (or table) where the number was read, or clear the number",
            )
        )
    if record.is_manual and record.included and record.sample_size()[0] is None:
        problems.append(
            Problem(
                path,
                row.line,
                f"study {study_id!r} has manual coordinates but no sample size",
                "a study typed in from a paper needs n_total (or n_patients and n_controls)",
            )
        )
    return record


def _mixes(row: Row, path: str, problems: list[Problem]) -> str:
    """The ``table_mix`` cell: ``;``-separated values of ``TABLE_MIXES``."""
    value = row["table_mix"]
    unknown = [m.strip() for m in value.split(";") if m.strip() and m.strip() not in TABLE_MIXES]
    if unknown:
        problems.append(
            Problem(
                path,
                row.line,
                f"unknown table_mix {', '.join(map(repr, unknown))}",
                f"use one or more of {', '.join(TABLE_MIXES)}, separated by ';'",
            )
        )
    return ";".join(m.strip() for m in value.split(";") if m.strip())


def read_records(path: Path, problems: list[Problem]) -> list[StudyRecord]:
    """Read and check one records file; append every problem found to ``problems``."""
    rows = read_tsv(path, RECORD_COLUMNS, RECORD_OPTIONAL, problems)
    return [_record_from_row(row, str(path), problems) for row in rows]


def _coordinate(row: Row, column: str, path: str, problems: list[Problem]) -> float | None:
    value = row[column]
    try:
        number = float(value)
    except ValueError:
        hint = " (use a decimal point)" if "," in value else ""
        what = "missing" if value == "" else f"{value!r} is not a number{hint}"
        problems.append(
            Problem(path, row.line, f"{column} {what}", "write the coordinate in mm, e.g. -42")
        )
        return None
    if not math.isfinite(number):
        problems.append(
            Problem(path, row.line, f"{column} = {value!r} is not finite", "write a number in mm")
        )
        return None
    return number


def check_focus_location(
    xyz_mni: tuple[float, float, float], path: str, line: int, problems: list[Problem]
) -> None:
    """Record a problem if an MNI focus lies outside the grid's box or far from the brain."""
    xyz = np.asarray(xyz_mni, dtype=float)
    shown = "({:g}, {:g}, {:g})".format(*np.round(xyz, 1))
    if outside_bounding_box(xyz)[0]:
        problems.append(
            Problem(
                path,
                line,
                f"focus {shown} (MNI) lies outside the MNI152 bounding box",
                "check the sign and order of x, y, z and the space",
            )
        )
        return
    distance = distance_to_brain(xyz)[0]
    if distance > FAR_OUTSIDE_MM:
        # GingerALE and NiMARE keep such a focus: its kernel still reaches into the mask.
        problems.append(
            Problem(
                path,
                line,
                f"focus {shown} (MNI) lies {distance:.0f} mm outside the brain mask",
                "it is used as given; check the sign and order of x, y, z and the space "
                "(TAL vs MNI)",
                severity="warning",
            )
        )


def read_manual_foci(path: Path, problems: list[Problem]) -> list[ManualFocus]:
    """Read and check one file of manually entered foci."""
    rows = read_tsv(path, MANUAL_COLUMNS, ["note"], problems)
    foci = []
    seen: dict[tuple, int] = {}
    for row in rows:
        path_s = str(path)
        space = row["space"]
        if space not in SPACES:
            problems.append(
                Problem(path_s, row.line, f"unknown space {space!r}", "use MNI or TAL")
            )
        if not row["study_id"]:
            problems.append(Problem(path_s, row.line, "empty study_id", "name the study"))
        xyz = [_coordinate(row, axis, path_s, problems) for axis in "xyz"]
        if any(value is None for value in xyz) or space not in SPACES:
            continue
        key = (row["study_id"], row["experiment"], *xyz)
        if key in seen:
            problems.append(
                Problem(
                    path_s,
                    row.line,
                    f"focus ({xyz[0]:g}, {xyz[1]:g}, {xyz[2]:g}) entered twice in experiment "
                    f"{row['experiment']!r} of {row['study_id']} (first at line {seen[key]})",
                    "it counts once; delete the repeated line to silence this",
                    severity="warning",
                )
            )
            continue
        seen[key] = row.line
        mni = to_mni(np.array([xyz]), np.array([space]))[0]
        check_focus_location(tuple(mni), path_s, row.line, problems)
        foci.append(
            ManualFocus(
                row["study_id"], row["experiment"], space, row["table"], *xyz, path_s, row.line
            )
        )
    return foci


def load_curation(root: Path) -> Curation:
    """Read every records and manual-coordinates file under a ``coordinates/`` folder.

    Parameters
    ----------
    root : Path
        The ``coordinates/`` folder (holding ``records/``, ``manual/`` and ``contrasts/``).

    Returns
    -------
    Curation
        Records, manual foci, and every problem found (not raised, so that a caller can
        report them all at once).
    """
    root = Path(root)
    curation = Curation()
    for path in sorted((root / "records").glob("*.tsv")):
        curation.records += read_records(path, curation.problems)
    for path in sorted((root / "manual").glob("*.tsv")):
        curation.manual_foci += read_manual_foci(path, curation.problems)
    for path in sorted((root / "contrasts").glob("*.tsv")):
        curation.contrasts += read_contrasts(path, curation.problems)
    if (root / LEDGER_FILE).is_file():
        curation.control_decisions = read_control_ledger(root / LEDGER_FILE, curation.problems)
    check_consistency(curation)
    return curation


def check_consistency(curation: Curation) -> None:
    """Cross-file checks: duplicate studies, manual studies with no foci, orphan foci, and
    contrasts that belong to no study or name no foci."""
    first_seen: dict[tuple[str, str], StudyRecord] = {}
    for record in curation.records:
        key = (record.group, record.study_id)
        if key in first_seen and record.study_id:
            earlier = first_seen[key]
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"duplicate study_id {record.study_id} in group {record.group} "
                    f"(also {earlier.file}:{earlier.line})",
                    "keep one record per study and group; merge their information",
                )
            )
        first_seen.setdefault(key, record)
    foci_by_study: dict[str, list[ManualFocus]] = defaultdict(list)
    for focus in curation.manual_foci:
        foci_by_study[focus.study_id].append(focus)
    manual_ids = {r.study_id for r in curation.records if r.is_manual}
    for record in curation.records:
        if record.is_manual and record.included and not foci_by_study.get(record.study_id):
            curation.problems.append(
                Problem(
                    record.file,
                    record.line,
                    f"experiment {record.study_id} has zero foci",
                    "add its foci to a file in coordinates/manual/, or exclude the study",
                )
            )
    for study_id, foci in foci_by_study.items():
        if study_id not in manual_ids:
            curation.problems.append(
                Problem(
                    foci[0].file,
                    foci[0].line,
                    f"foci of {study_id!r} have no record with source_db 'manual'",
                    "add a record for this study in coordinates/records/ with source_db manual",
                )
            )
    check_contrasts(curation)


def check_contrasts(curation: Curation) -> None:
    """Every contrast belongs to a study record, once, and names foci of that study.

    A typed-in study's contrast names an ``experiment`` of its manual foci; a database
    study's contrast names its database table (``table_id``, checked against the database by
    ``mnsmeta validate``).
    """
    records = {(r.study_id, r.group): r for r in curation.records}
    labels: dict[str, set[str]] = defaultdict(set)
    for focus in curation.manual_foci:
        labels[focus.study_id].add(focus.experiment)
    seen: dict[tuple[str, str, str], Contrast] = {}
    for contrast in curation.contrasts:
        key = (contrast.study_id, contrast.group, contrast.label)
        where = f"{contrast.study_id} ({contrast.group})"
        record = records.get(key[:2])
        if record is None:
            curation.problems.append(
                Problem(
                    contrast.file,
                    contrast.line,
                    f"contrast {contrast.label!r} belongs to no study: no record of {where}",
                    "fix the study_id or group, or add the study's record in coordinates/records/",
                )
            )
        elif record.is_manual and contrast.label not in labels[record.study_id]:
            known = ", ".join(sorted(labels[record.study_id])) or "none"
            curation.problems.append(
                Problem(
                    contrast.file,
                    contrast.line,
                    f"contrast {contrast.label!r} of {where} names no experiment of its typed-in "
                    f"foci (they have: {known})",
                    "write the contrast exactly as the experiment column of coordinates/manual/",
                )
            )
        elif not record.is_manual and not contrast.table_id:
            curation.problems.append(
                Problem(
                    contrast.file,
                    contrast.line,
                    f"contrast {contrast.label!r} of database study {where} has no table_id",
                    "write the database table that holds its foci (`mnsmeta studies --tables "
                    f"{contrast.study_id}` lists them)",
                )
            )
        if key in seen:
            first = seen[key]
            curation.problems.append(
                Problem(
                    contrast.file,
                    contrast.line,
                    f"contrast {contrast.label!r} of {where} is curated twice (also "
                    f"{first.file}:{first.line})",
                    "keep one line per contrast",
                )
            )
        seen.setdefault(key, contrast)


def load_valid_curation(root: Path) -> Curation:
    """:func:`load_curation`, refusing a folder that is missing or has errors (warnings pass).

    Raises
    ------
    MnsmetaInputError
        With the first ten errors; ``mnsmeta validate`` lists them all.
    """
    root = Path(root)
    if not root.is_dir():
        raise MnsmetaInputError(
            f"{root}: no such folder: run from the project folder or pass --coordinates"
        )
    curation = load_curation(root)
    if curation.errors:
        raise MnsmetaInputError(
            f"{len(curation.errors)} problem(s) in {root} (run `mnsmeta validate` for the list)",
            curation.errors[:10],
        )
    return curation
