"""Published, expert-curated healthy reference sets, and their paradigm-matched selections.

The field's own healthy meta-analytic foci sets (BrainMap-style, one experiment per named
contrast, with its N) are read like the databases: from pinned public URLs with SHA-256
checks, or from ``$MNSMETA_DATA_MIRROR/published/``
(:data:`mnsmeta.data.releases.PUBLISHED_FILES`);
never committed. An analysis declares them by name (``reference = ["laird2015"]`` in
``analyses.toml``; ``mnsmeta ale laird2015``).

Their files are as the authors shared them, quirks included, and are read so: a focus outside
the MNI152 box (Laird 2015 line 717, a few in Morawetz 2020 and Riedel 2018) is dropped with a
warning naming it; a focus repeated within an experiment counts once (warned); CRLF line ends,
tab padding and blank lines are read as any Sleuth file's; Talairach files are converted to MNI.

**Paradigm-matched selection** (``matched_to = "SAD"``): the rule, in code.

1. A reference experiment has paradigm *p* when its contrast label matches the set's label
   rule for *p* (:data:`LABEL_RULES`; on the label's left-hand side, before its first
   ``>``/``vs``/``-`` comparator, so that "Neutral > Fearful" is not an emotional-faces
   contrast); sets without labels (Riedel 2018: "Author here") have no rules.
2. One contrast per study (the study's name before ``:`` or ``;``), drawn at random with the
   run's seed, so that a study with many contrasts does not weigh more (Turkeltaub et al.,
   2012).
3. The disorder's experiments are counted per curated paradigm; each paradigm with
   candidates gets ``ratio`` x its count of reference experiments, where ``ratio`` is the
   largest whole number the scarcest paradigm allows (at most :data:`MAX_RATIO`, at least 1),
   drawn at random with the seed. The paradigm shares of the reference then equal those of
   the disorder's covered experiments; a disorder paradigm with no candidate is reported
   uncovered (the balance table says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mnsmeta.curation.experiments import ExperimentSet
from mnsmeta.curation.inputs import read_experiments
from mnsmeta.data.releases import release_path
from mnsmeta.errors import MnsmetaInputError, Problem

#: At most this many reference experiments per disorder experiment of a paradigm: a
#: reference at most twice the disorder's size, within which the permutation subtraction is
#: used without size balancing (beyond it, the balanced subtraction: 69 min here per pair).
MAX_RATIO = 2
_COMPARATOR = re.compile(r"\s(?:>|<|vs\.?|versus|-)\s|>")
_EMOTION = r"fear|angry|anger|happy|happiness|sad\b|sadness|disgust|emotion|threat|expressi"


@dataclass(frozen=True)
class PublishedSet:
    """One published reference set: its files and what it holds."""

    name: str
    files: tuple[str, ...]
    citation: str
    holds: str


PUBLISHED_SETS = {
    s.name: s
    for s in (
        PublishedSet(
            "laird2015",
            ("laird2015",),
            "Laird et al. 2015, NeuroImage (PMID 26093327)",
            "face perception, healthy participants: 386 experiments (Talairach)",
        ),
        PublishedSet(
            "morawetz2020",
            ("morawetz2020",),
            "Morawetz et al. 2020, Neurosci Biobehav Rev (PMID 32659287)",
            "emotion reactivity and regulation, healthy adults: 385 experiments (MNI)",
        ),
        PublishedSet(
            "pintoslobo2022",
            ("pintoslobo2022_mni", "pintoslobo2022_tal"),
            "Pintos Lobo et al. 2022, PMID 36436737",
            "social processes (RDoC), healthy adults 18-60: 646 MNI + 218 Talairach experiments",
        ),
        PublishedSet(
            "riedel2018",
            tuple(f"riedel2018_{part}" for part in range(1, 6)),
            "Riedel et al. 2018, Hum Brain Mapp (PMID 29484767)",
            "BrainMap emotion experiments in 5 files (no study names or contrast labels)",
        ),
    )
}

#: Per set and record paradigm (coordinates/records), the pattern a contrast label's
#: left-hand side must match (case-insensitive). Morawetz's labels are coded
#: (``task>emotion ... reg``), so its rules read the codes.
LABEL_RULES = {
    "laird2015": {
        "emotional_faces": rf"{_EMOTION}",
    },
    "morawetz2020": {
        "emotion_regulation": r"^task>emotion\b.*\breg\b",
        "emotional_scenes": r"^emotion>(?:baseline|task)\b.*\b(?:picture|film)\b.*\breact\b",
    },
    "pintoslobo2022": {
        "emotional_faces": rf"(?:{_EMOTION}).*fac|fac.*(?:{_EMOTION})",
        "social_exclusion": r"exclu|ostrac|cyberball|reject",
        "social_feedback": r"feedback|evaluat|prais|critic|approv",
        "self_referential": r"\bself\b",
        "theory_of_mind": r"mental|\btom\b|belief|theory of mind|intention|mind",
        # The expert MNS set: watching or copying hand and body actions. Not "being
        # imitated" (the participant is watched), not faces or touch.
        "action_observation": (
            r"^\s*observ\w*(?:\s+x\b.*)?\s*$|observ\w* of (?:both hands|biological motion)"
            r"|^\s*grasping\b|hand gestures\s*$|hand movement task"
        ),
        "imitation": r"^(?!\s*being\b).*\bimitat(?:e|es|ing|ion)\b",
        "observation_execution": r"observ\w*.*\bexecution\b",
    },
    "riedel2018": {},
}


#: Labels of analyses that are not a task contrast (correlations, connectivity): never matched.
NOT_A_TASK_CONTRAST = r"correlat|\bppi\b|connectivity|regress"
#: Sets whose labels are codes read whole (Morawetz: ``task>emotion ... reg``).
CODED_LABELS = ("morawetz2020",)


def _sides(label: str) -> str:
    """The left-hand side of a contrast label (all of it without a comparator)."""
    return _COMPARATOR.split(label, maxsplit=1)[0]


def _split_name(name: str) -> tuple[str, str]:
    """Study and contrast of an experiment name ``Study: contrast`` or ``Study; contrast``
    (the contrast is the whole name when there is no separator)."""
    parts = re.split(r"[:;]", name, maxsplit=1)
    return parts[0].strip(), (parts[1].strip() if len(parts) == 2 else name)


def read_reference(name: str, group: str | None = None) -> tuple[ExperimentSet, list[Problem]]:
    """Read a published reference set into experiments (foci in MNI), with its warnings.

    Parameters
    ----------
    name : str
        A key of :data:`PUBLISHED_SETS`.
    group : str, optional
        The experiment set's group name (default: ``name``).

    Raises
    ------
    MnsmetaInputError
        For an unknown name (the known ones listed), or a file that cannot be read.
    """
    if name not in PUBLISHED_SETS:
        raise MnsmetaInputError(
            f"{name!r}: no published reference set of that name: use one of "
            f"{', '.join(PUBLISHED_SETS)}, or give a foci file"
        )
    published = PUBLISHED_SETS[name]
    group = group or name
    experiments, foci, warnings = [], [], []
    for part, key in enumerate(published.files, start=1):
        # Only foci off the grid are dropped: the authors' foci far outside the brain are
        # kept, as GingerALE and NiMARE keep them.
        one, found = read_experiments(release_path(key), group, drop_outside="box")
        warnings += found
        table = one.experiments.copy()
        table["contrasts"] = table["contrasts"].astype(str)
        prefix = f"{name} part {part}: " if len(published.files) > 1 else ""
        table.index = prefix + table.index
        table["source"] = f"{name} ({published.citation})"
        experiments.append(table)
        foci.append(one.foci.assign(experiment_id=prefix + one.foci["experiment_id"]))
    return (
        ExperimentSet(group, pd.concat(experiments), pd.concat(foci, ignore_index=True)),
        warnings,
    )


def label_paradigms(experiments: pd.DataFrame, name: str) -> pd.DataFrame:
    """Which paradigms each experiment's contrast label matches (rule 1), as booleans."""
    rules = LABEL_RULES.get(name, {})
    labels = experiments["contrasts"].astype(str).map(lambda name: _split_name(name)[1])
    not_task = labels.str.contains(NOT_A_TASK_CONTRAST, case=False, regex=True)
    if name not in CODED_LABELS:
        labels = labels.map(_sides)
    return pd.DataFrame(
        {
            p: labels.str.contains(rule, case=False, regex=True) & ~not_task
            for p, rule in rules.items()
        },
        index=experiments.index,
    )


def _candidates(names: list[str], group: str) -> tuple[pd.DataFrame, dict]:
    """Every experiment of the named sets whose label matches a paradigm's rule (one row per
    experiment and paradigm matched), and the sets read."""
    candidates, sets = [], {}
    for name in names:
        reference, _ = read_reference(name, group)
        sets[name] = reference
        named = label_paradigms(reference.experiments, name)
        prints = _fingerprints(reference.foci)
        for paradigm in named.columns:
            hits = reference.experiments[named[paradigm]]
            candidates.append(
                pd.DataFrame(
                    {
                        "experiment_id": [f"{name} | {i}" for i in hits.index],
                        "source_id": hits.index,
                        "foci_print": prints.reindex(hits.index).to_numpy(),
                        "set": name,
                        "study": [f"{name}: {_split_name(c)[0]}" for c in hits["contrasts"]],
                        "label": hits["contrasts"].to_numpy(),
                        "paradigm": paradigm,
                        "rule": LABEL_RULES[name][paradigm],
                        "sample_size": hits["sample_size"].to_numpy(),
                    }
                )
            )
    pool = pd.concat(candidates, ignore_index=True) if candidates else pd.DataFrame()
    return pool, sets


def select_matched(
    names: list[str], disorder_paradigms: pd.Series, group: str, seed: int
) -> tuple[ExperimentSet, pd.DataFrame, pd.DataFrame]:
    """The paradigm-matched selection of published reference experiments (rules 1-3).

    Parameters
    ----------
    names : list of str
        Published sets to draw from.
    disorder_paradigms : pandas.Series
        The curated paradigm of each disorder experiment.
    group : str
        The selection's group name.
    seed : int
        Seed of the one-contrast-per-study and per-paradigm draws.

    Returns
    -------
    experiments : ExperimentSet
        The selected experiments.
    selection : pandas.DataFrame
        One row per selected experiment: ``experiment_id``, ``set``, ``study``, ``label``,
        ``paradigm``, ``rule`` (the pattern its label matched), ``sample_size``.
    balance : pandas.DataFrame
        Per paradigm: disorder experiments, candidates (studies), selected, and the shares of
        the disorder's experiments (all, and those of covered paradigms) and of the selection.
    """
    rng = np.random.default_rng(seed)
    pool, sets = _candidates(names, group)
    counts = disorder_paradigms.replace("", "not curated").value_counts()
    chosen, rows = [], []
    if len(pool):
        # Rule 2: one contrast per study and paradigm, at random; an experiment whose foci
        # another set (or study) already gives is the same experiment entered twice.
        pool = pool.iloc[rng.permutation(len(pool))].drop_duplicates(["paradigm", "study"])
        pool = pool.drop_duplicates(["paradigm", "foci_print"])
        pool = pool.sort_values(["paradigm", "experiment_id"], kind="stable")
        available = pool.groupby("paradigm")["study"].nunique()
        covered = [p for p in counts.index if p in available.index]
        ratio = max(1, min([MAX_RATIO, *(available[p] // counts[p] for p in covered)]))
        used: set[str] = set()
        for paradigm in covered:
            options = pool[(pool["paradigm"] == paradigm) & ~pool["experiment_id"].isin(used)]
            take = min(len(options), ratio * int(counts[paradigm]))
            picked = options.iloc[np.sort(rng.choice(len(options), take, replace=False))]
            used |= set(picked["experiment_id"])
            chosen.append(picked)
    selection = (
        pd.concat(chosen, ignore_index=True)
        if chosen
        else pd.DataFrame(
            columns=[
                "experiment_id",
                "source_id",
                "foci_print",
                "set",
                "study",
                "label",
                "paradigm",
                "rule",
                "sample_size",
            ]
        )
    )
    if selection.empty:
        raise MnsmetaInputError(
            f"{group}: no experiment of {', '.join(names)} matches a paradigm of the disorder "
            f"({', '.join(counts.index)}): name other reference sets"
        )
    for paradigm, n in counts.items():
        rows.append(
            {
                "paradigm": paradigm,
                "disorder_experiments": int(n),
                "candidate_studies": int((pool["paradigm"] == paradigm).sum()) if len(pool) else 0,
                "selected": int((selection["paradigm"] == paradigm).sum()),
            }
        )
    balance = pd.DataFrame(rows)
    balance["disorder_share"] = (
        balance["disorder_experiments"] / balance["disorder_experiments"].sum()
    )
    covered = balance["disorder_experiments"].where(balance["selected"] > 0, 0)
    balance["covered_share"] = covered / max(1, covered.sum())
    balance["selected_share"] = balance["selected"] / max(1, balance["selected"].sum())
    experiments = _subset(sets, selection, group)
    return experiments, selection.drop(columns=["foci_print"]), balance


def select_paradigms(
    names: list[str], paradigms: tuple[str, ...], group: str, seed: int
) -> tuple[ExperimentSet, pd.DataFrame]:
    """Every study of the named sets with a contrast of these paradigms, one contrast each.

    The label rules are :data:`LABEL_RULES` (rule 1 above); a study with several matching
    contrasts (of one paradigm or several) gives one, drawn with the seed (rule 2), so that
    no sample enters twice. Used for the expert MNS mask (Pintos Lobo et al.'s action
    observation and imitation contrasts).

    Returns
    -------
    experiments : ExperimentSet
    selection : pandas.DataFrame
        One row per selected experiment, as :func:`select_matched` gives it.
    """
    rng = np.random.default_rng(seed)
    pool, sets = _candidates(names, group)
    pool = pool[pool["paradigm"].isin(paradigms)] if len(pool) else pool
    if pool.empty:
        raise MnsmetaInputError(
            f"{group}: no contrast label of {', '.join(names)} matches "
            f"{', '.join(paradigms)}: name other sets or paradigms (rules: LABEL_RULES in "
            "src/mnsmeta/curation/references.py)"
        )
    pool = pool.iloc[rng.permutation(len(pool))].drop_duplicates("study")
    pool = pool.drop_duplicates("foci_print").sort_values("experiment_id", kind="stable")
    return _subset(sets, pool, group), pool.drop(columns=["foci_print"]).reset_index(drop=True)


def _fingerprints(foci: pd.DataFrame) -> pd.Series:
    """Per experiment, its foci rounded to 0.1 mm as one sortable string."""
    rounded = foci.assign(key=[f"{x:.1f},{y:.1f},{z:.1f}" for x, y, z in
                               foci[["x", "y", "z"]].to_numpy()])  # fmt: skip
    return rounded.groupby("experiment_id")["key"].agg(lambda keys: ";".join(sorted(keys)))


def _subset(sets: dict, selection: pd.DataFrame, group: str) -> ExperimentSet:
    """The selected experiments of several reference sets as one experiment set."""
    tables, foci = [], []
    for name, reference in sets.items():
        rows = selection[selection["set"] == name]
        rename = dict(zip(rows["source_id"], rows["experiment_id"], strict=True))
        table = reference.experiments.loc[rows["source_id"]].rename(index=rename)
        tables.append(table.assign(sample_size_rule="// Subjects= line of the published set"))
        kept = reference.foci[reference.foci["experiment_id"].isin(rename)]
        foci.append(kept.assign(experiment_id=kept["experiment_id"].map(rename)))
    return ExperimentSet(group, pd.concat(tables), pd.concat(foci, ignore_index=True))
