"""A task-matched set of healthy-only studies from the databases: the specificity control.

The SAD and BPD maps pool every contrast of every study, task main effects included, so a
cluster may be what the task produces in anyone. The control set answers "does the
disorder's convergence exceed what the same tasks produce in healthy people?": one
healthy-only study per disorder study, matched on the tasks its abstract names, analysed with
the same ALE and subtracted from the disorder's (``SAD - SAD_controls``).

The rule, in code:

1. **Pool**: NeuroQuery studies (the release with term counts) with foci in the merged
   databases, at most ``MANY_FOCI`` of them, not curated for any group, and whose title,
   abstract and keywords never name a patient, a disorder, a clinical population, children
   or old age (``CLINICAL_TERMS``: any count excludes). Healthy-only is thus read from the
   text, not from a participants table: a study of patients that never says so would pass.
2. **Profile**: which of ``TASK_TERMS`` (tasks, stimuli and processes of SAD and BPD
   paradigms, from NeuroQuery's vocabulary) its title, abstract and keywords name (presence,
   not counts).
3. **Match**: disorder studies in PMID order each take the most similar (cosine of the
   profiles; ties to the lower PMID) pool study not yet taken, if the similarity is at least
   ``CALIPER``; 1:1 without replacement, so the control set has the disorder set's size (no
   size imbalance in the subtraction). A disorder study with no task term is left unmatched.
4. **Kernel**: database studies carry no sample size; a control takes the N of the study it
   matches, so both sets have the same kernel widths (stated as its ``sample_size_rule``).

The balance (per task term, the share of studies naming it in each set and the
standardized difference) is written beside the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse

from mnsmeta.curation.contrasts import UNKNOWN
from mnsmeta.curation.experiments import EXPERIMENT_COLUMNS, FOCI_COLUMNS, ExperimentSet
from mnsmeta.data import databases, hygiene
from mnsmeta.data.releases import release_path

#: Tasks, stimuli and processes named by SAD and BPD paradigms (NeuroQuery vocabulary terms).
#: Not "sad": NeuroQuery lowercases, so every SAD abstract "names" it (the acronym).
TASK_TERMS = (
    "faces", "face", "facial expression", "facial expressions", "emotional faces",
    "neutral faces", "fearful faces", "fear", "anger", "angry", "happy", "disgust",
    "threat", "aversive", "emotional stimuli", "emotion", "emotional", "negative emotions",
    "emotion regulation", "reappraisal", "social", "social interaction", "interpersonal",
    "rejection", "criticism", "evaluation", "trust", "empathy", "mentalizing", "gaze", "self",
    "autobiographical memories", "speech", "public speaking", "anticipation", "conditioning",
    "extinction", "reward", "monetary reward", "pain", "memory", "working memory",
    "inhibition", "response inhibition", "attention", "attentional bias", "stroop", "flanker",
    "decision making", "learning", "pictures", "images", "words", "film", "music", "imitation",
    "action observation", "aggression",
)  # fmt: skip
#: Any count of these in title, abstract or keywords: not a healthy-adult study.
CLINICAL_TERMS = (
    "patients", "patient", "clinical", "disorder", "disorders", "schizophrenia",
    "schizophrenic", "psychosis", "depression", "depressive disorder",
    "major depressive disorder", "bipolar", "anxiety disorders", "social anxiety",
    "social phobia", "personality disorder", "borderline personality disorder", "ptsd", "ocd",
    "autism", "adhd", "addiction", "dependence", "alcohol", "cocaine", "smokers", "alzheimer",
    "dementia", "mild cognitive impairment", "parkinson", "epilepsy", "stroke", "lesion",
    "tumor", "children", "adolescents", "adolescent", "infants", "older adults", "aging",
    "elderly",
)  # fmt: skip
#: Least cosine similarity of task profiles for a match.
CALIPER = 0.5
#: A pool study with more foci than this is left out (as candidates are flagged).
MANY_FOCI = 100
SOURCES = ("neuroquery_abstract_counts", "neuroquery_keywords_counts", "neuroquery_title_counts")


@dataclass
class MatchedControls:
    """The control set of one disorder group.

    Attributes
    ----------
    matches : pandas.DataFrame
        One row per disorder study: ``pmid`` (disorder), ``control_pmid`` (0: unmatched),
        ``similarity``, ``shared_terms``.
    balance : pandas.DataFrame
        One row per task term: ``disorder_share``, ``control_share``, ``smd`` (standardized
        difference of the two shares), over matched pairs.
    pool_size : int
        Healthy-only studies the matches were drawn from.
    """

    matches: pd.DataFrame
    balance: pd.DataFrame
    pool_size: int

    @property
    def pairs(self) -> pd.DataFrame:
        return self.matches[self.matches["control_pmid"] > 0]


def _presence(terms: tuple[str, ...]) -> tuple[np.ndarray, scipy.sparse.csr_matrix]:
    """PMIDs of NeuroQuery and whether each names each term (title, abstract or keywords)."""
    vocabulary = {t: i for i, t in enumerate(release_path("neuroquery_vocabulary").read_text()
                                             .splitlines())}  # fmt: skip
    missing = [t for t in terms if t not in vocabulary]
    if missing:
        raise ValueError(f"not in NeuroQuery's vocabulary: {missing}")
    columns = [vocabulary[t] for t in terms]
    pmids = pd.read_csv(release_path("neuroquery_metadata"), sep="\t", usecols=["id"])["id"]
    total = None
    for key in SOURCES:
        counts = scipy.sparse.load_npz(release_path(key)).tocsc()[:, columns]
        total = counts if total is None else total + counts
    return pmids.to_numpy(), (total > 0).astype(np.float64).tocsr()


def healthy_pool(exclude: set[int]) -> pd.Index:
    """PMIDs of the healthy-only pool (rule 1), without ``exclude`` (every curated study)."""
    pmids, clinical = _presence(CLINICAL_TERMS)
    healthy = pmids[np.asarray(clinical.sum(axis=1)).ravel() == 0]
    studies = databases.study_metadata()
    counts = studies.reindex(healthy)["n_foci_neuroquery"].fillna(0)
    keep = (counts > 0) & (counts <= MANY_FOCI) & ~counts.index.isin(list(exclude))
    return pd.Index(counts.index[keep], name="pmid")


def match_controls(disorder_pmids, exclude: set[int]) -> MatchedControls:
    """Match one healthy-only pool study to each disorder study (rules 1-3).

    Parameters
    ----------
    disorder_pmids : iterable of int
        The disorder group's database studies.
    exclude : set of int
        Studies never taken as controls (every curated study of every group).
    """
    pmids, presence = _presence(TASK_TERMS)
    row_of = pd.Series(np.arange(len(pmids)), index=pmids)
    pool = healthy_pool(exclude)
    pool_rows = presence[row_of.reindex(pool).to_numpy()]
    pool_norms = np.sqrt(np.asarray(pool_rows.multiply(pool_rows).sum(axis=1)).ravel())
    taken = np.zeros(len(pool), dtype=bool)
    rows = []
    for pmid in sorted(int(p) for p in disorder_pmids):
        if pmid not in row_of.index:
            rows.append((pmid, 0, np.nan, ""))
            continue
        profile = presence[row_of[pmid]]
        norm = np.sqrt(profile.multiply(profile).sum())
        if norm == 0:
            rows.append((pmid, 0, np.nan, ""))
            continue
        dots = np.asarray((pool_rows @ profile.T).todense()).ravel()
        with np.errstate(invalid="ignore", divide="ignore"):
            similarity = np.where(pool_norms > 0, dots / (pool_norms * norm), 0.0)
        similarity[taken] = -1.0
        # argmax takes the first maximum: the pool is in PMID order, so ties go to the lower.
        best = int(np.argmax(similarity))
        if similarity[best] < CALIPER:
            rows.append((pmid, 0, float(similarity[best]), ""))
            continue
        taken[best] = True
        shared = profile.multiply(pool_rows[best]).indices
        rows.append((pmid, int(pool[best]), float(similarity[best]),
                     "; ".join(TASK_TERMS[i] for i in sorted(shared))))  # fmt: skip
    matches = pd.DataFrame(rows, columns=["pmid", "control_pmid", "similarity", "shared_terms"])
    pairs = matches[matches["control_pmid"] > 0]
    disorder = presence[row_of.reindex(pairs["pmid"]).to_numpy()].toarray()
    control = presence[row_of.reindex(pairs["control_pmid"]).to_numpy()].toarray()
    return MatchedControls(matches, balance_table(disorder, control), len(pool))


def balance_table(disorder: np.ndarray, control: np.ndarray) -> pd.DataFrame:
    """Per task term, the share of each set naming it and their standardized difference.

    ``smd = (p1 - p2) / sqrt((p1 (1 - p1) + p2 (1 - p2)) / 2)`` (0 when both shares are 0
    or 1); |smd| < 0.1 is the usual mark of a balanced covariate (Austin, 2009).
    """
    p1 = disorder.mean(axis=0) if len(disorder) else np.zeros(len(TASK_TERMS))
    p2 = control.mean(axis=0) if len(control) else np.zeros(len(TASK_TERMS))
    spread = np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        smd = np.where(spread > 0, (p1 - p2) / spread, 0.0)
    return pd.DataFrame(
        {"term": TASK_TERMS, "disorder_share": p1, "control_share": p2, "smd": smd}
    )


def control_experiments(
    disorder: ExperimentSet, matched: MatchedControls, name: str
) -> ExperimentSet:
    """The matched controls as ALE experiments (rule 4: each takes its match's N).

    Their foci are the merged databases' (as for any database study), cleaned by the same
    hygiene rules (:func:`mnsmeta.data.hygiene.apply_rules`).
    """
    pairs = matched.pairs
    foci = databases.merged_foci(pmids=pairs["control_pmid"].tolist())
    foci["experiment_id"] = foci["pmid"].astype(str)
    foci[["copy_of", "copy_rule"]] = foci.reindex(columns=["copy_of", "copy_rule"]).fillna("")
    foci["contrast"], foci["kind"] = "", UNKNOWN
    foci, removed = hygiene.apply_rules(foci)
    rows = []
    experiment_of = disorder.experiment_of_study()
    for pair in pairs.itertuples():
        study = str(pair.control_pmid)
        study_foci = foci[foci["experiment_id"] == study]
        rows.append(
            {
                "experiment_id": study,
                "group": name,
                "source": study_foci["source"].iloc[0],
                "n_foci": len(study_foci),
                "sample_size": disorder.experiments.loc[
                    experiment_of[str(pair.pmid)], "sample_size"
                ],
                "sample_size_rule": f"matched: N of {pair.pmid} (no N in the databases)",
                "reported_space": study_foci["reported_space"].iloc[0],
                "space_rule": study_foci["space_rule"].iloc[0],
                "design": "healthy_only",
                **{
                    f"foci_removed_{rule}": int(removed[rule].get(study, 0))
                    for rule in hygiene.RULES
                },
            }
        )
    experiments = pd.DataFrame(rows, columns=EXPERIMENT_COLUMNS).set_index("experiment_id")
    return ExperimentSet(name, experiments, foci[FOCI_COLUMNS].reset_index(drop=True))
