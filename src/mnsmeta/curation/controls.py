"""A paradigm-matched set of screened healthy-only studies: the database specificity control.

The SAD and BPD maps pool every contrast of every study, task main effects included, so a
cluster may be what the task produces in anyone. The control set answers "does the
disorder's convergence exceed what the same paradigms produce in healthy people?": one
healthy-only study per disorder study, of the paradigm curated for it, analysed with the same
ALE and subtracted from the disorder's (``SAD - SAD_controls``).

The rule, in code:

1. **Pool**: NeuroQuery studies (the release with term counts) with foci in the merged
   databases, at most ``MANY_FOCI`` of them, not curated for any group, and screened as
   patients are (:func:`screen`): task fMRI or PET only (no MEG, EEG, fNIRS, structural,
   diffusion, resting-state, sleep or stimulation study: ``NOT_TASK_IMAGING_TITLE`` and
   ``NOT_TASK_IMAGING_TERMS``), healthy adults only (no patient, disorder, clinical
   population, child or old age: ``CLINICAL_TERMS``; no forensic, occupational, trait- or
   symptom-selected sample: ``SELECTED_SAMPLE_TITLE`` and ``SELECTED_SAMPLE_TERMS``), read
   from titles and from title/abstract/keyword term counts, not from a participants table.
2. **Paradigm**: a pool study has a paradigm when its title, abstract or keywords name it
   (``PARADIGM_TERMS``, the record paradigms' names in NeuroQuery's vocabulary); a study may
   have several.
3. **Match**: disorder studies in PMID order each take, among the pool studies of their curated
   paradigm not yet taken and not excluded by the control ledger
   (``coordinates/controls.tsv``, a reader's decision), the one whose task profile
   (``TASK_TERMS``) is most similar (cosine; ties to the lower PMID); 1:1 without
   replacement. A disorder study whose paradigm has no term rule (``other``) or no pool study
   left is unmatched, and says so.
4. **Kernel**: database studies carry no sample size; a control takes the N of the study it
   matches, so both sets have the same kernel widths (stated as its ``sample_size_rule``:
   borrowed, not read).

The balance (per task term and per paradigm, the share of studies naming it in each set and
the standardized difference) is written beside the map; every chosen control has a row in the
ledger with its title, decision and reason (a test keeps the two in step).
"""

from __future__ import annotations

import re
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
#: Titles of studies that are not task fMRI or PET (acronyms as written; the rest in any case).
NOT_TASK_IMAGING_TITLE = re.compile(
    r"\b(?:MEG|EEG|ERPs?|fNIRS|NIRS|VBM|DTI|DWI|TMS|tDCS)\b|(?i:magnetoenceph|electroenceph"
    r"|event-related potential|near-infrared|morphometr|gr[ae]y[- ]matter (?:volume|density)"
    r"|cortical thickness|diffusion tensor|tractograph|white[- ]matter|resting[- ]state"
    r"|\bat rest\b|k-complex|\bsleep|transcranial|\blesions?\b)"
)
#: Term counts (title + abstract + keywords) from which a study is taken for not task imaging.
NOT_TASK_IMAGING_TERMS = {
    "magnetoencephalography": 1, "electroencephalography": 1, "eeg": 2, "erp": 2,
    "infrared": 1, "spindle": 1, "sleep": 3, "resting state": 3, "neuroanatomical": 3,
}  # fmt: skip
#: Titles of forensic, occupational, trait- or symptom-selected samples.
SELECTED_SAMPLE_TITLE = re.compile(
    r"(?i:psychopath|offender|prisoner|inmate|criminal|forensic|violent|burnout|\bstress"
    r"|anxious|trait anxiety|neurotic|extraver|introver|alexithym|schizotyp|autistic trait"
    r"|symptom|veteran|smoker|obes|insomnia|patient|disorder|personality|meditat|expert"
    r"|novice|musician|athlete|religio|oxytocin|testosterone|cortisol|placebo|drug"
    r"|pharmacolog|genotyp|polymorphism|\bgenes?\b|allele|neurofeedback|excess weight"
    r"|overweight|buddhis|christian)"
)
#: Term counts from which a sample is taken for selected by a trait, symptom or setting, or
#: for manipulated (drug, neurofeedback, meditation training).
SELECTED_SAMPLE_TERMS = {
    "psychopathic": 1, "psychopathic personality": 1, "burnout": 1, "trait anxiety": 1,
    "alexithymia": 1, "veterans": 1, "life stress": 1, "emotional stress": 1,
    "psychological stress": 1, "stress": 3, "extraversion": 2, "personality traits": 2,
    "placebo": 1, "mindfulness": 1, "musicians": 1, "neurofeedback": 1, "pharmacological": 1,
}  # fmt: skip
#: The record paradigms (coordinates/records) in NeuroQuery's vocabulary: a study names a
#: paradigm when it names any term of one of its alternatives' first tuple and, where the
#: second is not empty, any of the second too. ``other`` has no rule: not matched.
_EMOTIONS = ("fear", "anger", "angry", "happy", "disgust", "threat", "emotion", "emotional")
_NEGATIVE = ("emotional", "emotion", "negative", "aversive", "unpleasant", "emotional stimuli")
PARADIGM_TERMS = {
    "emotional_faces": (
        (("emotional faces", "fearful faces", "happy faces", "facial expression",
          "facial expressions"), ()),
        (("faces", "face"), _EMOTIONS),
    ),
    "emotional_scenes": ((("pictures", "images", "scenes", "film"), _NEGATIVE),),
    "emotion_regulation": ((("emotion regulation", "reappraisal"), ()),),
    "social_exclusion": ((("social rejection", "rejection"), ()),),
    "social_feedback": ((("criticism",), ()), (("feedback",), ("social", "peer", "evaluation"))),
    "self_referential": ((("self referential", "self evaluation", "self evaluations"), ()),),
    "theory_of_mind": ((("mentalizing", "theory mind", "mental states"), ()),),
    "pain": ((("pain",), ()),),
    "reward": ((("reward", "monetary reward", "reward anticipation"), ()),),
    "memory": ((("memory", "episodic memory", "autobiographical memory",
                 "autobiographical memories", "encoding", "retrieval"), ()),),
    "cognitive_control": ((("stroop", "response inhibition", "inhibitory control",
                            "cognitive control", "flanker", "nogo"), ()),),
    "conditioning": ((("conditioning", "classical conditioning", "pavlovian conditioning",
                       "extinction"), ()),),
    "anticipation": ((("anticipation", "anticipatory"), ()),),
    "speech": ((("public speaking", "speech production"), ()),),
}  # fmt: skip
#: A pool study with more foci than this is left out (as candidates are flagged).
MANY_FOCI = 100
MATCH_COLUMNS = [
    "pmid", "paradigm", "control_pmid", "title", "similarity", "shared_terms", "note"
]  # fmt: skip
SOURCES = ("neuroquery_abstract_counts", "neuroquery_keywords_counts", "neuroquery_title_counts")


@dataclass
class MatchedControls:
    """The control set of one disorder group.

    Attributes
    ----------
    matches : pandas.DataFrame
        One row per disorder study: ``pmid`` (disorder), ``paradigm`` (curated),
        ``control_pmid`` (0: unmatched), ``title`` (the control's), ``similarity``,
        ``shared_terms``, ``note`` (why unmatched).
    balance : pandas.DataFrame
        One row per task term: ``disorder_share``, ``control_share``, ``smd`` (standardized
        difference of the two shares), over matched pairs.
    pool_size : int
        Screened healthy-only studies the matches were drawn from.
    screened_out : dict
        Pool studies left out by each screening reason (:func:`screen`).
    """

    matches: pd.DataFrame
    balance: pd.DataFrame
    pool_size: int
    screened_out: dict

    @property
    def pairs(self) -> pd.DataFrame:
        return self.matches[self.matches["control_pmid"] > 0]


def _counts(terms) -> tuple[np.ndarray, scipy.sparse.csr_matrix]:
    """PMIDs of NeuroQuery and their title + abstract + keyword counts of ``terms``."""
    vocabulary = {t: i for i, t in enumerate(release_path("neuroquery_vocabulary").read_text()
                                             .splitlines())}  # fmt: skip
    terms = list(terms)
    missing = [t for t in terms if t not in vocabulary]
    if missing:
        raise ValueError(f"not in NeuroQuery's vocabulary: {missing}")
    columns = [vocabulary[t] for t in terms]
    pmids = pd.read_csv(release_path("neuroquery_metadata"), sep="\t", usecols=["id"])["id"]
    total = None
    for key in SOURCES:
        counts = scipy.sparse.load_npz(release_path(key)).tocsc()[:, columns]
        total = counts if total is None else total + counts
    return pmids.to_numpy(), total.tocsr()


def _presence(terms) -> tuple[np.ndarray, scipy.sparse.csr_matrix]:
    """PMIDs of NeuroQuery and whether each names each term (title, abstract or keywords)."""
    pmids, counts = _counts(terms)
    return pmids, (counts > 0).astype(np.float64).tocsr()


def studies_naming(terms) -> pd.DataFrame:
    """Whether each NeuroQuery study names each term in its title, abstract or keywords."""
    pmids, presence = _presence(terms)
    return pd.DataFrame(presence.toarray() > 0, index=pd.Index(pmids, name="pmid"),
                        columns=list(terms))  # fmt: skip


def _at_least(thresholds: dict) -> tuple[np.ndarray, np.ndarray]:
    """PMIDs, and for each the first term of ``thresholds`` it names that often ('' if none)."""
    pmids, counts = _counts(thresholds)
    hits = counts.toarray() >= np.array(list(thresholds.values()))
    names = np.array(list(thresholds), dtype=object)
    first = np.where(hits.any(axis=1), names[hits.argmax(axis=1)], "")
    return pmids, first


def screen(pmids) -> pd.DataFrame:
    """Why each study cannot be a healthy task-imaging control ('' where it can: rule 1).

    Parameters
    ----------
    pmids : array-like of int
        NeuroQuery studies.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``pmid``: ``title`` and ``reason`` ('' = passes; else the first rule that
        takes it out and what it matched, e.g. ``not task imaging: title 'MEG'``).
    """
    pmids = pd.Index(pmids, name="pmid")
    titles = databases.study_metadata()["title"].reindex(pmids).fillna("").astype(str)
    reason = pd.Series("", index=pmids, dtype=object)
    rules = (
        ("clinical or age group", None, {t: 1 for t in CLINICAL_TERMS}),
        ("not task imaging", NOT_TASK_IMAGING_TITLE, NOT_TASK_IMAGING_TERMS),
        ("selected sample", SELECTED_SAMPLE_TITLE, SELECTED_SAMPLE_TERMS),
    )
    for label, pattern, thresholds in rules:
        open_ = reason == ""
        if pattern is not None:
            found = titles.str.extract(f"({pattern.pattern})", expand=False).fillna("")
            hit = open_ & (found != "")
            reason[hit] = [f"{label}: title {m!r}" for m in found[hit]]
        open_ = reason == ""
        ids, first = _at_least(thresholds)
        named = pd.Series(first, index=ids).reindex(pmids).fillna("")
        hit = open_ & (named != "")
        reason[hit] = [f"{label}: names {t!r}" for t in named[hit]]
    return pd.DataFrame({"title": titles, "reason": reason})


def paradigms_named(pmids) -> pd.DataFrame:
    """Which record paradigms each study names (rule 2), as a boolean table."""
    terms = sorted({t for rules in PARADIGM_TERMS.values() for alt in rules for part in alt
                    for t in part})  # fmt: skip
    ids, presence = _presence(terms)
    column = {t: i for i, t in enumerate(terms)}
    rows = pd.Series(np.arange(len(ids)), index=ids).reindex(pmids)
    named = np.zeros((len(rows), len(terms)), dtype=bool)
    present = rows.notna().to_numpy()
    named[present] = presence[rows[present].astype(int).to_numpy()].toarray() > 0

    def any_of(part):
        return named[:, [column[t] for t in part]].any(axis=1) if part else True

    table = {}
    for paradigm, rules in PARADIGM_TERMS.items():
        table[paradigm] = np.logical_or.reduce([any_of(a) & any_of(b) for a, b in rules])
    return pd.DataFrame(table, index=pd.Index(pmids, name="pmid"))


def healthy_pool(exclude: set[int]) -> tuple[pd.Index, dict]:
    """PMIDs of the screened pool (rule 1), without ``exclude``; studies out per reason."""
    studies = databases.study_metadata()
    nq = pd.read_csv(release_path("neuroquery_metadata"), sep="\t", usecols=["id"])["id"]
    counts = studies.reindex(nq.to_numpy())["n_foci_neuroquery"].fillna(0)
    keep = (counts > 0) & (counts <= MANY_FOCI) & ~counts.index.isin(list(exclude))
    candidates = counts.index[keep]
    screened = screen(candidates)
    out = screened["reason"].str.split(":").str[0]
    passed = screened.index[screened["reason"] == ""]
    return pd.Index(passed, name="pmid"), out[out != ""].value_counts().to_dict()


def match_controls(disorder: dict, exclude: set[int], rejected=frozenset()) -> MatchedControls:
    """Match one screened healthy-only study of the same paradigm to each disorder study.

    Parameters
    ----------
    disorder : dict
        The disorder group's database studies: PMID -> curated paradigm ('' if none).
    exclude : set of int
        Studies never taken as controls (every curated study of every group).
    rejected : set of int
        Pool studies a reader excluded in the control ledger (``decision = exclude``).
    """
    pmids, presence = _presence(TASK_TERMS)
    row_of = pd.Series(np.arange(len(pmids)), index=pmids)
    pool, screened_out = healthy_pool(set(exclude) | {int(p) for p in rejected})
    if rejected:
        screened_out["control ledger: excluded by a reader"] = len(set(rejected) - set(exclude))
    pool_paradigms = paradigms_named(pool)
    pool_rows = presence[row_of.reindex(pool).to_numpy()]
    pool_norms = np.sqrt(np.asarray(pool_rows.multiply(pool_rows).sum(axis=1)).ravel())
    titles = databases.study_metadata()["title"]
    taken = np.zeros(len(pool), dtype=bool)
    rows, disorder_profiles = [], []
    for pmid in sorted(int(p) for p in disorder):
        paradigm = disorder[pmid] or ""
        if paradigm not in PARADIGM_TERMS:
            rows.append((pmid, paradigm, 0, "", np.nan, "", "no term rule for this paradigm"))
            continue
        eligible = pool_paradigms[paradigm].to_numpy() & ~taken
        if not eligible.any():
            rows.append((pmid, paradigm, 0, "", np.nan, "", "no pool study of this paradigm"))
            continue
        similarity = np.zeros(len(pool))
        profile = scipy.sparse.csr_matrix((1, len(TASK_TERMS)))  # not in NeuroQuery: no terms
        if pmid in row_of.index:
            profile = presence[row_of[pmid]]
            norm = np.sqrt(profile.multiply(profile).sum())
            dots = np.asarray((pool_rows @ profile.T).todense()).ravel()
            with np.errstate(invalid="ignore", divide="ignore"):
                similarity = np.where((pool_norms > 0) & (norm > 0),
                                      dots / (pool_norms * norm), 0.0)  # fmt: skip
        similarity[~eligible] = -1.0
        # argmax takes the first maximum: the pool is in PMID order, so ties go to the lower.
        best = int(np.argmax(similarity))
        taken[best] = True
        shared = profile.multiply(pool_rows[best]).indices
        disorder_profiles.append(profile.toarray().ravel())
        rows.append((pmid, paradigm, int(pool[best]), str(titles.get(pool[best], "")),
                     float(similarity[best]), "; ".join(TASK_TERMS[i] for i in sorted(shared)),
                     ""))  # fmt: skip
    matches = pd.DataFrame(rows, columns=MATCH_COLUMNS)
    pairs = matches[matches["control_pmid"] > 0]
    control = presence[row_of.reindex(pairs["control_pmid"]).to_numpy()].toarray()
    disorder_profile = np.array(disorder_profiles).reshape(len(pairs), len(TASK_TERMS))
    return MatchedControls(
        matches, balance_table(disorder_profile, control), len(pool), screened_out
    )


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
