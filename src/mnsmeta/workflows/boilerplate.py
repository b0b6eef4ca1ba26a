"""The methods paragraph of a run, with references, and its BIDS-Derivatives description.

NiMARE writes a boilerplate with every meta-analysis so that a paper's methods section says
exactly what was computed; this one is written from the same settings the provenance file
records, so the two cannot disagree.
"""

from __future__ import annotations

import pandas as pd

from mnsmeta import __version__
from mnsmeta.curation.analyses import Analysis

REFERENCES = {
    "acar2018": "Acar F, Seurinck R, Eickhoff SB, Moerkerke B (2018). Assessing robustness "
    "against potential publication bias in activation likelihood estimation (ALE) "
    "meta-analyses for fMRI. PLoS One 13:e0208177.",
    "holm1979": "Holm S (1979). A simple sequentially rejective multiple test procedure. "
    "Scand J Stat 6:65-70.",
    "guyatt2008": "Guyatt GH, Oxman AD, Vist GE, et al. (2008). GRADE: an emerging consensus "
    "on rating quality of evidence and strength of recommendations. BMJ 336:924-926.",
    "smith2009": "Smith SM, Nichols TE (2009). Threshold-free cluster enhancement: addressing "
    "problems of smoothing, threshold dependence and localisation in cluster inference. "
    "NeuroImage 44:83-98.",
    "frahm2022": "Frahm L, Cieslik EC, Hoffstaedter F, Satterthwaite TD, Fox PT, Langner R, "
    "Eickhoff SB (2022). Evaluation of thresholding methods for activation likelihood "
    "estimation meta-analysis via large-scale simulations. Hum Brain Mapp 43:3987-3997.",
    "turkeltaub2002": "Turkeltaub PE, Eden GF, Jones KM, Zeffiro TA (2002). Meta-analysis of the "
    "functional neuroanatomy of single-word reading. NeuroImage 16:765-780.",
    "eickhoff2009": "Eickhoff SB, Laird AR, Grefkes C, Wang LE, Zilles K, Fox PT (2009). "
    "Coordinate-based activation likelihood estimation meta-analysis of neuroimaging data. "
    "Hum Brain Mapp 30:2907-2926.",
    "turkeltaub2012": "Turkeltaub PE, Eickhoff SB, Laird AR, Fox M, Wiener M, Fox P (2012). "
    "Minimizing within-experiment and within-group effects in activation likelihood "
    "estimation meta-analyses. Hum Brain Mapp 33:1-13.",
    "eickhoff2012": "Eickhoff SB, Bzdok D, Laird AR, Kurth F, Fox PT (2012). Activation "
    "likelihood estimation meta-analysis revisited. NeuroImage 59:2349-2361.",
    "eickhoff2016": "Eickhoff SB, Nichols TE, Laird AR, et al. (2016). Behavior, sensitivity, "
    "and power of activation likelihood estimation characterized by massive empirical "
    "simulation. NeuroImage 137:70-85.",
    "eickhoff2011": "Eickhoff SB, Bzdok D, Laird AR, et al. (2011). Co-activation patterns "
    "distinguish cortical modules, their connectivity and functional differentiation. "
    "NeuroImage 57:938-949.",
    "nichols2005": "Nichols T, Brett M, Andersson J, Wager T, Poline JB (2005). Valid "
    "conjunction inference with the minimum statistic. NeuroImage 25:653-660.",
    "lancaster2007": "Lancaster JL, Tordesillas-Gutierrez D, Martinez M, et al. (2007). Bias "
    "between MNI and Talairach coordinates analyzed using the ICBM-152 brain template. Hum "
    "Brain Mapp 28:1194-1205.",
    "salo2023": "Salo T, Yarkoni T, Nichols TE, et al. (2023). NiMARE: Neuroimaging "
    "Meta-Analysis Research Environment. Aperture Neuro 3:1-32.",
}


def methods_text(analyses: list[Analysis], summary: pd.DataFrame, settings, versions: dict) -> str:
    """A methods paragraph for the analyses of one run, then its reference list."""
    rows = summary.set_index("analysis")
    ale = [a for a in analyses if a.is_ale and a.name in rows.index]
    sizes = "; ".join(
        f"{a.name}: {int(rows.at[a.name, 'experiments'])} experiments, "
        f"{int(rows.at[a.name, 'foci'])} foci"
        for a in ale
        if pd.notna(rows.at[a.name, "experiments"]) and rows.at[a.name, "experiments"] > 0
    )
    cited = ["turkeltaub2002", "eickhoff2009", "turkeltaub2012", "eickhoff2012", "eickhoff2016"]
    text = [
        f"Activation likelihood estimation (ALE; Turkeltaub et al., 2002; Eickhoff et al., "
        f"2009, 2012) was performed with mnsmeta {__version__} (NiMARE "
        f"{versions.get('nimare', '?')}'s estimator; Salo et al., 2023) on {sizes}. Foci "
        "reported in Talairach space were converted to MNI space with the icbm2tal transform "
        "(Lancaster et al., 2007). Each experiment's foci were modelled as Gaussians whose "
        "width depends on its sample size (Eickhoff et al., 2009) and combined into one "
        "modelled activation map per experiment, taking the maximum where foci overlap "
        "(Turkeltaub et al., 2012); a location reported twice in one experiment was counted "
        "once. The ALE map was the voxel-wise union of these maps on the MNI152 2 mm grid. "
        f"Inference used cluster-level family-wise error correction by Monte Carlo "
        f"simulation with {settings.n_iters:,} iterations (cluster-forming threshold "
        f"p < {settings.cluster_forming_p:g}, cluster {settings.cluster_statistic}, "
        f"cluster-level p < {settings.cluster_p:g}; "
        f"Eickhoff et al., 2012, 2016), random seed {settings.seed}.",
    ]
    cited.append("salo2023")
    cited.append("lancaster2007")
    if any(a.is_subtraction for a in analyses):
        text.append(
            "Differences between two analyses were assessed by an ALE subtraction: the "
            "experiments' group labels were permuted "
            f"{settings.n_iters:,} times (Eickhoff et al., 2011); each direction was evaluated "
            "only where its minuend survived correction, by cluster-level family-wise error "
            "correction against the largest cluster of each permutation (cluster-forming "
            f"threshold: the {1 - settings.cluster_forming_p:g} quantile of the permuted "
            f"differences; cluster-level p < {settings.cluster_p:g})."
        )
        cited.append("eickhoff2011")
    if any(a.controls for a in analyses):
        text.append(
            "To ask whether a disorder's convergence exceeds what the same paradigms produce "
            "in healthy people, each disorder study was matched one-to-one, without "
            "replacement, to a NeuroQuery study naming its curated paradigm (among those, the "
            "most similar in the task terms of title, abstract and keywords), from a pool "
            "screened as patients are: task fMRI or PET only (no MEG, EEG, fNIRS, structural, "
            "diffusion, resting-state or sleep study), no clinical, forensic, trait-, symptom- "
            "or manipulation-selected sample, no children or older adults, read from titles "
            "and term counts; every chosen control was read and its decision recorded in a "
            "ledger. Each control took the N of the study it matched (the databases give none), "
            "and the disorder was contrasted with its control set by the ALE subtraction."
        )
    if settings.tfce:
        text.append(
            "Threshold-free cluster enhancement (Smith and Nichols, 2009) was computed on the "
            "z maps as in JALE (E = 0.5, H = 2, 100 steps; Frahm et al., 2022) and corrected "
            f"at the voxel level against the largest TFCE value of {settings.n_iters:,} "
            "Monte Carlo maps."
        )
        cited += ["smith2009", "frahm2022"]
    if any(a.is_conjunction for a in analyses):
        text.append(
            "Convergence common to two analyses was assessed as the voxel-wise minimum of their "
            "cluster-corrected z maps (Nichols et al., 2005)."
        )
        cited.append("nichols2005")
    if any(a.is_disorder for a in analyses):
        text += project_methods(settings)
        cited += ["acar2018", "holm1979", "eickhoff2016", "guyatt2008"]
    references = sorted(REFERENCES[key] for key in dict.fromkeys(cited))
    return " ".join(text) + "\n\nReferences\n\n" + "\n".join(references) + "\n"


def project_methods(settings) -> list[str]:
    """The project's own steps: data, fallback N, space, masks, overlap, robustness, verdicts.

    Written from the constants the code uses, so that they cannot drift apart.
    """
    from mnsmeta.claims.verdicts import RULES
    from mnsmeta.inference.robustness import FSN_MULTIPLES, NOISE_DRAWS
    from mnsmeta.workflows.overlap import MOVES

    fallback = settings.sample_size_fallback
    return [
        "Peak coordinates were taken from the Neurosynth 0.7 and NeuroQuery 1 releases "
        "(automatic extraction from published tables) for the studies admitted by curation "
        "(coordinates/records: one experiment per independent sample; tables that mix other "
        "populations, connectivity or treatment effects, and ROI-only peaks, enter only "
        "sensitivity variants); tables whose numbers are not plausible coordinates were "
        "dropped before analysis.",
        f"An experiment without a sample size in any source was given the {fallback} N of "
        "its group's experiments with a known N; foci of unknown space were used as "
        "reported (MNI assumed), a choice the sensitivity analyses vary.",
        "Overlap with the mirror neuron system was tested against an anatomical mask "
        "(Juelich maximum-probability areas BA44, BA45, ventral BA6 and the inferior "
        "parietal PF areas) and a meta-analytic one (the cluster-FWE ALE of the MNS "
        "reference studies), by two tests: the voxels of the significant clusters inside a "
        "mask against the same clusters moved rigidly at random in the brain (at least "
        f"{MOVES:,} placements), and the mean ALE inside a mask against foci relocated at "
        "random in the brain or in grey matter (secondary: it asks whether foci are "
        "non-uniform).",
        "Each cluster's robustness was assessed by experiments' contributions, a "
        "leave-one-out jackknife (survival, retained volume, peak shift) and the fail-safe N "
        f"(Acar et al., 2018): noise experiments uniform in grey matter, {NOISE_DRAWS} noise "
        f"draws, bisection over {len(FSN_MULTIPLES)} levels from "
        f"{min(FSN_MULTIPLES):g} n to {max(FSN_MULTIPLES):g} n.",
        "Each claim of the reviewed paper was decided by one pre-specified primary test: "
        f"supported when {RULES['supported']} (Holm, 1979); evidence against when "
        f"{RULES['evidence against']}, power simulated by planting convergence in the "
        "analysis's own data; inconclusive otherwise; not testable when "
        f"{RULES['not testable']}. Each verdict carries a certainty grade computed from the "
        "data in the domains of GRADE (Guyatt et al., 2008): risk of bias, inconsistency, "
        "imprecision, indirectness and fragility under sensitivity variants.",
    ]


def dataset_description(command: str, versions: dict) -> dict:
    """BIDS-Derivatives ``dataset_description.json`` of a results folder."""
    return {
        "Name": f"mnsmeta results ({command})",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "mnsmeta",
                "Version": __version__,
                "Description": f"{command}; NiMARE {versions.get('nimare', '?')}",
            }
        ],
    }
