"""From curation records to ALE experiments: selection, merging, space, sample sizes.

One sample is one experiment (Turkeltaub et al., 2012): all contrasts a study reports for a
group are pooled, and so are the records of one sample (``sample`` in the records: two papers
of the same participants), so that the same participants never enter an analysis twice.
:class:`ExperimentSet` is the experiment model every later stage uses.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.curation.contrasts import BETWEEN_GROUPS, UNKNOWN, Contrast
from mnsmeta.curation.foci_files import FociExperiment
from mnsmeta.curation.records import Curation, StudyRecord
from mnsmeta.data import databases, hygiene
from mnsmeta.data.space import SPACE_RULES, mm_to_voxel, to_mni, voxel_to_mm
from mnsmeta.errors import MnsmetaInputError, Problem

EXPERIMENT_COLUMNS = [
    "experiment_id",
    "studies",
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
    "contrasts",
    "kinds",
    # Foci dropped by each hygiene rule (mnsmeta.data.hygiene), before n_foci was counted.
    "foci_removed_implausible_table",
    "foci_removed_duplicate_table",
    "foci_removed_near_copy_table",
    "foci_removed_repeated_focus",
]


#: Columns of the foci table: experiment, its contrast (label and kind), the table it was
#: read from, MNI mm.
FOCI_COLUMNS = ["experiment_id", "contrast", "kind", "table_id", "x", "y", "z"]


@dataclass
class ExperimentSet:
    """The experiments of one analysis and their foci: the one experiment model.

    Every stage reads experiments through this object: the ALE (as a NiMARE dataset), the
    overlap relocations and the robustness checks (as arrays), the export (as Sleuth text or
    a NiMARE dataset dictionary) and the results folder (``experiments.csv`` and
    ``foci.tsv``).

    Attributes
    ----------
    group : str
        Group or analysis name (SAD, BPD, MNS, or a pooled analysis's name).
    experiments : pandas.DataFrame
        One row per experiment (see ``EXPERIMENT_COLUMNS``; at least ``sample_size``),
        indexed by ``experiment_id`` (str), in analysis order.
    foci : pandas.DataFrame
        One row per focus (``FOCI_COLUMNS``), MNI mm, grouped by experiment in the order of
        ``experiments``. Every row counts (one random focus in the Monte Carlo null, as in
        NiMARE), so a location appears once per experiment (:mod:`mnsmeta.data.hygiene`).
    fallback_sample_size : int or None
        The N given to experiments whose sample size was not curated.
    """

    group: str
    experiments: pd.DataFrame
    foci: pd.DataFrame
    fallback_sample_size: int | None = None

    def __post_init__(self):
        self.experiments.index = self.experiments.index.astype(str)
        self.experiments.index.name = "experiment_id"
        foci = self.foci.assign(experiment_id=self.foci["experiment_id"].astype(str))
        position = pd.Series(np.arange(len(self.experiments)), index=self.experiments.index)
        order = np.argsort(foci["experiment_id"].map(position).to_numpy(), kind="stable")
        self.foci = foci.iloc[order].reset_index(drop=True)

    @classmethod
    def from_voxels(cls, group: str, ids, ijk, counts, sample_sizes) -> ExperimentSet:
        """Experiments whose foci lie at the centres of the voxels ``ijk`` (synthetic ones).

        ``ijk`` holds the foci of ``ids[0]`` first, ``counts[0]`` of them, and so on.
        """
        xyz = voxel_to_mm(ijk)
        foci = pd.DataFrame(
            {
                "experiment_id": np.repeat(np.asarray(ids, dtype=str), counts),
                "contrast": "",
                "kind": UNKNOWN,
                "table_id": "",
                "x": xyz[:, 0],
                "y": xyz[:, 1],
                "z": xyz[:, 2],
            }
        )
        experiments = pd.DataFrame({"sample_size": sample_sizes}, index=pd.Index(ids, dtype=str))
        return cls(group, experiments, foci)

    @property
    def ids(self) -> list[str]:
        """Experiment ids, in analysis order."""
        return self.experiments.index.tolist()

    @property
    def counts(self) -> np.ndarray:
        """Foci per experiment (int64), in analysis order."""
        counts = self.foci.groupby("experiment_id", sort=False).size()
        return counts.reindex(self.experiments.index, fill_value=0).to_numpy(np.int64)

    @property
    def sample_sizes(self) -> np.ndarray:
        """The N of each experiment (int64): its kernel width."""
        return self.experiments["sample_size"].to_numpy(np.int64)

    @property
    def xyz(self) -> np.ndarray:
        """(n_foci, 3) MNI coordinates in mm, grouped by experiment."""
        return self.foci[["x", "y", "z"]].to_numpy(float)

    def ijk(self) -> np.ndarray:
        """(n_foci, 3) voxel indices on the MNI152 2 mm grid (NiMARE's rounding)."""
        return mm_to_voxel(self.xyz).astype(np.int64)

    def experiment_of_foci(self) -> np.ndarray:
        """(n_foci,) position of each focus's experiment."""
        return np.repeat(np.arange(len(self.experiments)), self.counts)

    def sample_size_of_foci(self) -> np.ndarray:
        """(n_foci,) sample size of each focus's experiment."""
        return np.repeat(self.sample_sizes, self.counts)

    def plus(self, other: ExperimentSet) -> ExperimentSet:
        """These experiments followed by ``other``'s (ids must differ)."""
        return ExperimentSet(
            self.group,
            pd.concat([self.experiments, other.experiments]),
            pd.concat([self.foci, other.foci], ignore_index=True),
            self.fallback_sample_size,
        )

    def experiment_of_study(self) -> dict[str, str]:
        """Each study's experiment id (the records of one sample share one experiment)."""
        studies = self.experiments.get("studies", pd.Series(dtype=object)).fillna("")
        mapping = {e: e for e in self.experiments.index}
        for experiment_id, members in studies.items():
            mapping.update(
                {m.strip(): experiment_id for m in str(members).split(";") if m.strip()}
            )
        return mapping

    def with_fallback(self) -> pd.Index:
        """Ids of the experiments whose N is the fallback."""
        rule = self.experiments.get("sample_size_rule", pd.Series(dtype=str)).fillna("")
        return self.experiments.index[rule.str.startswith("fallback")]

    def to_sleuth(self) -> list[FociExperiment]:
        """Return the experiments as Sleuth experiments in MNI (the exact foci used)."""
        out = []
        source = self.experiments.get("source", pd.Series("", index=self.experiments.index))
        for (experiment_id, n), foci in zip(
            self.experiments["sample_size"].items(), self.foci_by_experiment(), strict=True
        ):
            out.append(
                FociExperiment(
                    f"{experiment_id}: {self.group} {source[experiment_id]}",
                    int(n),
                    "MNI",
                    [tuple(map(float, focus)) for focus in foci[["x", "y", "z"]].to_numpy()],
                )
            )
        return out

    def to_nimare_dict(self) -> dict:
        """Return the NiMARE dataset dictionary (one contrast per study, MNI, sample size)."""
        source = {}
        for (experiment_id, n), foci in zip(
            self.experiments["sample_size"].items(), self.foci_by_experiment(), strict=True
        ):
            source[str(experiment_id)] = {
                "contrasts": {
                    "1": {
                        "coords": {
                            "space": "MNI",
                            "x": foci["x"].tolist(),
                            "y": foci["y"].tolist(),
                            "z": foci["z"].tolist(),
                        },
                        "metadata": {"sample_sizes": [int(n)]},
                    }
                }
            }
        return source

    def foci_by_experiment(self) -> list[pd.DataFrame]:
        """Each experiment's foci, in analysis order (the table is grouped by experiment)."""
        bounds = np.r_[0, np.cumsum(self.counts)]
        return [self.foci.iloc[a:b] for a, b in itertools.pairwise(bounds)]


def _manual_foci(curation: Curation, record: StudyRecord) -> pd.DataFrame:
    foci = [f for f in curation.manual_foci if f.study_id == record.study_id]
    xyz = np.array([[f.x, f.y, f.z] for f in foci], dtype=float).reshape(-1, 3)
    spaces = np.array([f.space for f in foci])
    mni = to_mni(xyz, spaces)
    typed = pd.DataFrame(
        {
            "experiment_id": record.study_id,
            "contrast": [f.experiment for f in foci],
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "table_id": [f.table for f in foci],
            "reported_space": spaces,
            "space_rule": [SPACE_RULES[s] for s in spaces],
        }
    )
    # Plausibility is judged as typed (before any conversion), per table and contrast.
    typed = hygiene.mark_implausible_tables(typed, keys=("table_id", "contrast"))
    typed[["x", "y", "z"]] = mni
    return typed


#: How the N of a between-group experiment is counted: both groups (the main rule), or the
#: patients alone (a sensitivity variant). See :meth:`StudyRecord.sample_size`.
N_RULES = ("both_groups", "patients_only")


def _label_contrasts(foci: pd.DataFrame, curation: Curation, records) -> pd.DataFrame:
    """Each focus's contrast label and kind: as curated, else its table (kind unknown).

    A database focus belongs to the contrast curated for its table; a typed-in focus to the
    contrast named in its ``experiment`` column.
    """
    foci = foci.copy()
    labels = foci["contrast"] if "contrast" in foci else pd.Series(None, index=foci.index)
    foci["contrast"] = labels.astype(object).where(labels.notna(), foci["table_id"]).astype(str)
    foci["kind"] = UNKNOWN
    table = foci["table_id"].astype(str)
    for record in records:
        mine = foci["experiment_id"] == record.study_id
        # A table stored twice: a contrast curated on either copy labels the kept one too;
        # one curated on the kept table itself (applied last) wins.
        kept_of = dict(zip(table[mine], foci.loc[mine, "copy_of"], strict=True))
        contrasts = curation.contrasts_of(record)
        for contrast in sorted(contrasts, key=lambda c: not kept_of.get(c.table_id)):
            if record.is_manual:
                hit = mine & (foci["contrast"] == contrast.label)
            else:
                tables = {contrast.table_id, kept_of.get(contrast.table_id) or contrast.table_id}
                hit = mine & table.isin(tables)
                foci.loc[hit, "contrast"] = contrast.label
            foci.loc[hit, "kind"] = contrast.kind
    return foci


def build_experiments(
    curation: Curation,
    group: str,
    fallback: str | int = "median",
    modalities: tuple[str, ...] = (),
    contrast_kinds: tuple[str, ...] = (),
    n_rule: str = "both_groups",
    paradigms: tuple[str, ...] = (),
    effectors: tuple[str, ...] = (),
) -> ExperimentSet:
    """Select a group's included studies and turn them into ALE experiments.

    Parameters
    ----------
    curation : Curation
        Records, manual foci and contrasts from ``coordinates/``.
    group : str
        SAD, BPD or MNS.
    fallback : "median" or int
        N given to experiments without a curated sample size: the median N of the group's
        experiments that have one (rounded to a whole number), or a fixed number.
    modalities : tuple of str
        Keep only records of these modalities (default: every included record).
    contrast_kinds : tuple of str
        Keep only the contrasts of these kinds (default: every contrast, the study-level
        analysis). The selected contrasts of one study are pooled into one experiment
        (Turkeltaub et al., 2012); studies with no selected contrast are left out. In every
        analysis a copied table is dropped and a location counts once per experiment
        (:mod:`mnsmeta.data.hygiene`), counted in ``foci_removed_*``.
    n_rule : {"both_groups", "patients_only"}
        The N of an experiment that compares patients with controls: both groups (the main
        rule), or the patients alone (a sensitivity variant).
    paradigms, effectors : tuple of str
        Keep only records of these curated paradigms and effectors (default: all).

    Returns
    -------
    ExperimentSet
        Empty (no experiment) when ``contrast_kinds`` selects nothing.

    Raises
    ------
    MnsmetaInputError
        If the group has no included study, or an included study has no foci.
    """
    if n_rule not in N_RULES:
        raise ValueError(f"n_rule must be one of {N_RULES}, not {n_rule!r}")
    records = [
        r
        for r in curation.for_group(group)
        if (not modalities or r.modality in modalities)
        and (not paradigms or r.paradigm in paradigms)
        and (not effectors or r.effector in effectors)
    ]
    if not records:
        raise MnsmetaInputError(
            f"group {group}: no included study in coordinates/records/: "
            "set status to 'included' for the studies to analyse"
        )
    if contrast_kinds and UNKNOWN not in contrast_kinds:
        # Only curated contrasts can be of a selected kind: without one, nothing is selected,
        # and the databases need not be read.
        curated = {c.kind for r in records for c in curation.contrasts_of(r)}
        if not curated & set(contrast_kinds):
            return _empty(group)
    database_records = [r for r in records if not r.is_manual]
    foci_parts = []
    if database_records:
        merged = databases.merged_foci(
            source_overrides={r.pmid: r.source_db for r in database_records if r.source_db},
            space_overrides={r.pmid: r.space for r in database_records if r.space},
            pmids=[r.pmid for r in database_records],
        )
        for record in database_records:
            if record.keep_copy:
                merged = hygiene.prefer_copy(merged, record.pmid, record.keep_copy)
        merged["experiment_id"] = merged["pmid"].astype(str)
        foci_parts.append(merged)
    foci_parts += [_manual_foci(curation, r) for r in records if r.is_manual]
    foci = pd.concat(foci_parts, ignore_index=True)
    foci[["copy_of", "copy_rule"]] = foci.reindex(columns=["copy_of", "copy_rule"]).fillna("")
    counts = foci.groupby("experiment_id").size()
    empty = [r for r in records if counts.get(r.study_id, 0) == 0]
    if empty:
        raise MnsmetaInputError(
            f"group {group}: {len(empty)} included experiment(s) have zero foci",
            [_zero_foci_problem(record) for record in empty],
        )
    foci = _label_contrasts(foci, curation, records)

    known = [r.sample_size()[0] for r in records if r.sample_size()[0] is not None]
    if fallback == "median":
        fallback_n = int(np.round(np.median(known))) if known else None
        fallback_rule = f"fallback: median N of {len(known)} experiments with N"
    else:
        fallback_n, fallback_rule = int(fallback), "fallback: fixed N"
    if contrast_kinds:
        foci = foci[foci["kind"].isin(contrast_kinds)]
    # Foci hygiene (mnsmeta.data.hygiene): tables that are not coordinates, tables stored
    # twice; then, once a sample's records are one experiment, repeated foci.
    implausible = foci["implausible"].fillna("") != ""
    if implausible.any():
        kept_tables = foci.loc[~implausible].groupby("experiment_id").size()
        emptied = [r for r in records if kept_tables.get(r.study_id, 0) == 0]
        if emptied and not contrast_kinds:
            raise MnsmetaInputError(
                f"group {group}: {len(emptied)} included experiment(s) have no plausible table",
                [_implausible_problem(record) for record in emptied],
            )
    foci = foci.assign(study_id=foci["experiment_id"])
    units = _experiments_of_samples(records, curation.sample_rule)
    experiment_of = {r.study_id: unit_id for unit_id, members in units for r in members}
    foci["experiment_id"] = foci["study_id"].map(experiment_of)
    foci, removed = hygiene.apply_rules(foci)
    if contrast_kinds:
        present = set(foci["experiment_id"])
        units = [(unit_id, members) for unit_id, members in units if unit_id in present]
    rows = []
    for unit_id, members in units:
        study_foci = foci[foci["experiment_id"] == unit_id]
        # A directional experiment's N may be its contrasts' own; a study's is its record's;
        # a sample's is the largest its records report.
        sizes = [
            _sample_size(
                member,
                [
                    c
                    for c in curation.contrasts_of(member)
                    if contrast_kinds and c.label in set(study_foci["contrast"])
                ],
                n_rule,
            )
            for member in members
        ]
        best = max(range(len(sizes)), key=lambda i: -1 if sizes[i][0] is None else sizes[i][0])
        (n, rule), record = sizes[best], members[best]
        if len(members) > 1 and n is not None:
            rule = f"largest of the sample's records ({rule})"
        if n is None:
            if fallback_n is None:
                raise MnsmetaInputError(
                    f"group {group}: no experiment has a sample size, so there is no median "
                    "to fall back on: curate at least one N, or give a fixed fallback"
                )
            n, rule = fallback_n, fallback_rule
        rows.append(
            {
                "experiment_id": unit_id,
                "studies": "; ".join(m.study_id for m in members),
                "group": group,
                "source": "; ".join(
                    dict.fromkeys(filter(None, (_source_of(m, study_foci) for m in members)))
                ),
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
                "contrasts": "; ".join(dict.fromkeys(study_foci["contrast"].astype(str))),
                "kinds": "; ".join(sorted(set(study_foci["kind"]))),
                **{
                    f"foci_removed_{rule}": int(removed[rule].get(unit_id, 0))
                    for rule in hygiene.RULES
                },
            }
        )
    experiments = pd.DataFrame(rows, columns=EXPERIMENT_COLUMNS).set_index("experiment_id")
    foci = foci[FOCI_COLUMNS].reset_index(drop=True)
    return ExperimentSet(group, experiments, foci, fallback_n)


#: Joins the study ids of a sample's records into its experiment's id ("22027088+23547713").
SAMPLE_JOIN = "+"


def _experiments_of_samples(records, sample_rule: str) -> list[tuple[str, list[StudyRecord]]]:
    """The experiments of these records: one per sample (records in file order).

    Under ``pool`` the records of one sample are one experiment, named by their study ids
    joined with ``+``; under ``first`` the records were already cut to one per sample
    (:meth:`Curation.for_group`).
    """
    samples: dict[str, list[StudyRecord]] = {}
    for record in records:
        samples.setdefault(record.sample_key, []).append(record)
    units = []
    for members in samples.values():
        if sample_rule == "first":
            members = members[:1]
        units.append((SAMPLE_JOIN.join(m.study_id for m in members), members))
    return units


def _source_of(record: StudyRecord, foci: pd.DataFrame) -> str:
    """The database (or ``manual``) a record's foci came from."""
    if record.is_manual:
        return "manual"
    sources = foci.loc[foci["study_id"] == record.study_id, "source"]
    return str(sources.iloc[0]) if len(sources) else ""


def _implausible_problem(record: StudyRecord) -> Problem:
    return Problem(
        record.file,
        record.line,
        f"every database table of study {record.study_id} fails the plausibility rule (not "
        "peak coordinates)",
        "exclude it with reason implausible_foci, or type its foci in from the paper "
        "(`mnsmeta studies --tables` lists the tables and the tests they fail)",
    )


def _empty(group: str) -> ExperimentSet:
    """An experiment set without experiments (an analysis with no data)."""
    experiments = pd.DataFrame(columns=EXPERIMENT_COLUMNS).set_index("experiment_id")
    return ExperimentSet(group, experiments, pd.DataFrame(columns=FOCI_COLUMNS))


def _sample_size(record: StudyRecord, contrasts: list[Contrast], n_rule: str):
    """The N of one experiment and the rule that gave it.

    The selected contrasts' own group sizes when a curator read them (the largest, if they
    differ), else the study's record. Under ``patients_only`` a between-group experiment
    counts its patients alone.
    """
    between = record.design == "patients_vs_controls" or any(
        c.kind in BETWEEN_GROUPS for c in contrasts
    )
    patients_only = n_rule == "patients_only" and between
    sized = [c for c in contrasts if c.n_patients]
    if sized:
        if patients_only:
            return max(c.n_patients for c in sized), "contrast n_patients (patients-only rule)"
        if all(c.n_controls for c in sized):
            return max(
                c.n_patients + c.n_controls for c in sized
            ), "contrast n_patients+n_controls"
    if patients_only:
        if record.n_patients:
            return record.n_patients, "n_patients (patients-only rule)"
        n, rule = record.sample_size()
        return n, (f"{rule}: patients not stated" if n is not None else rule)
    return record.sample_size()


def _zero_foci_problem(record: StudyRecord) -> Problem:
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
    A set without experiments adds nothing (its empty tables would turn the coordinates'
    dtype into object).
    """
    sets = [s for s in sets if len(s.experiments)] or sets[:1]
    experiments = pd.concat([s.experiments for s in sets])
    experiments = experiments[~experiments.index.duplicated(keep="first")]
    foci = pd.concat([s.foci.assign(group=s.group) for s in sets], ignore_index=True)
    first_group = experiments["group"]
    foci = foci[foci["group"] == foci["experiment_id"].map(first_group)].drop(columns="group")
    return ExperimentSet(name, experiments, foci.reset_index(drop=True), None)
