"""Reproduce published ALE meta-analyses from their authors' own foci files.

Each entry pins the authors' foci file and cluster table to one commit of their public
repository (a commit-pinned URL never changes) with its SHA-256, and the settings the
authors used. Both files are read like the databases (:func:`mnsmeta.data.releases.fetch_file`):
copied from ``$MNSMETA_DATA_MIRROR/published/`` when it is set, else downloaded, checked
and cached outside git; they are never committed. ``mnsmeta ale``'s workflow then runs on the
foci with the authors' settings, and every cluster of the authors' table is matched to ours:
the one of our clusters that holds the published peak (else the nearest peak), which
reproduces it when

- its peak lies within ``PEAK_MM`` of the published one (4 mm: two voxels of the 2 mm grid;
  grids and kernels of different NiMARE releases move a peak by a voxel), or the published
  peak lies inside it (a large cluster has several local maxima of nearly equal ALE, and
  which one is highest is the first thing a small change of the map moves), and
- its volume is within ``VOLUME_SHARE`` of the published one (15 %: the cluster-forming cut
  comes from the null histogram and, for the authors, from NiMARE releases of 2021-2022).

Beside the rule, each match reports the local maximum of our cluster (its peak table, 8 mm
apart) nearest the published peak (``local_max``, ``local_max_mm``). A published cluster smaller
than our Monte Carlo cluster-size cut (cluster-size inference only) is reported as
``below_cut``: no cluster-size FWE at the authors' p lets a cluster that small through,
whatever the grid, so it is not counted as missing; it is printed, with the volume of our
supra-threshold cluster at its peak (``forming_mm3``). A further cluster of ours is expected
in the authors' table only when its p is below the p their code applied (``table_cluster_p``).

``tests/test_reproduce.py`` runs both reproductions in ``make test`` (docs/reproductions.md).

Example::

    .venv/bin/python benchmarks/reproduce.py lotter2023 --jobs 2
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mnsmeta.data.releases import ReleaseFile, fetch_file
from mnsmeta.workflows.results import AnalysisFolder

PEAK_MM = 4.0
VOLUME_SHARE = 0.15
_RAW = "https://raw.githubusercontent.com"
_LOTTER = f"{_RAW}/LeonDLotter/MAsync/4cc742bf3a0d27c8039e4646d7f34895a197a34a/data"
_ENGE = f"{_RAW}/SkeideLab/meta_semantics"


@dataclass(frozen=True)
class Reproduction:
    citation: str
    foci: ReleaseFile
    #: The authors' cluster table.
    table: ReleaseFile
    #: ``table``: one row per focus (publication, n, space, x, y, z: read by the package's
    #: table reader); ``sleuth``: Sleuth text.
    foci_format: str
    cluster_forming_p: float
    cluster_p: float
    #: "size" or "mass" (cluster-level FWE).
    cluster_statistic: str
    #: The authors' Monte Carlo iterations.
    n_iters: int
    settings: str
    #: The cluster-level p that the authors' code applied when it wrote their table, where
    #: it differs from the stated ``cluster_p``: a cluster of ours with a p between the two
    #: is one their table could not hold.
    table_cluster_p: float
    experiments: int
    subjects: int
    #: ``--column`` values for a table: which column holds what, as the authors read it.
    columns: tuple[str, ...] = ()


REPRODUCTIONS = {
    "lotter2023": Reproduction(
        citation=(
            "Lotter LD, Kohl SH, et al. (2023). Revealing the neurobiology underlying "
            "interpersonal neural synchronization with multimodal data fusion. Neurosci "
            "Biobehav Rev 146:105042. doi:10.1016/j.neubiorev.2023.105042 (fMRI ALE: 22 "
            "experiments, 740 subjects)"
        ),
        foci=ReleaseFile(
            "lotter2023_foci",
            "published/lotter2023/ale_coordinates.csv",
            f"{_LOTTER}/ale_coordinates.csv",
            "0048233721680798f91b29a45a2e23402d8421a113f34893f9ba5f07d9f03d3b",
        ),
        table=ReleaseFile(
            "lotter2023_clusters",
            "published/lotter2023/ale_thresh_stat_clusters.csv",
            f"{_LOTTER}/ale/ale_thresh_stat_clusters.csv",
            "4f948b523837569e2212604fd0a56017c29165672574bcca9c93e067cd03996f",
        ),
        foci_format="table",
        cluster_forming_p=0.001,
        cluster_p=0.05,
        cluster_statistic="size",
        n_iters=5000,
        settings="NiMARE 0.0.9 ALE, FWECorrector(montecarlo, 5,000 iterations), cluster-forming "
        "p < 0.001, cluster-level FWE p < 0.05 by cluster size (MAsync_main.ipynb and "
        "src/ma_fun.py at the pinned commit; NiMARE 0.0.9 had no cluster mass)",
        # src/ma_fun.py keeps logp > -ln(0.05), written for natural-log maps; NiMARE's logp
        # is -log10 p since 2020 (its PR #333), so the table holds clusters of p < 0.00101.
        table_cluster_p=10 ** math.log(0.05),
        experiments=22,
        subjects=740,
        # The authors pooled each publication's contrasts into one experiment (their
        # csv_to_nimare_ds, single_contrasts=False): no contrast column.
        columns=("contrast=",),
    ),
    "enge2021": Reproduction(
        citation=(
            "Enge A, Abdel Rahman R, Skeide MA (2021). A meta-analysis of fMRI studies of "
            "semantic cognition in children. NeuroImage 241:118436. ALE of all 50 "
            "experiments, 1,018 children"
        ),
        foci=ReleaseFile(
            "enge2021_foci",
            "published/enge2021/all.txt",
            f"{_ENGE}/97183276cd253a89bc5af89d7d140ac58da5e9ef/results/ale/all.txt",
            "b1281f801a873730d6df0301d4c8703843c32bde33b0ac6aec7e936afc164e21",
        ),
        table=ReleaseFile(
            "enge2021_clusters",
            "published/enge2021/tab2_children.tsv",
            f"{_ENGE}/07a59c0d4f4b1f3d87349ce8921364605b9f81f2/results/tables/tab2_children.tsv",
            "7e730aa96f11d3668cca0b56985dc8611a6c30bbec558b27810dd8aa9a2fd47e",
        ),
        foci_format="sleuth",
        cluster_forming_p=0.001,
        cluster_p=0.01,
        cluster_statistic="size",
        n_iters=1000,
        settings="NiMARE 0.0.9 ALE, FWECorrector(montecarlo, 1,000 iterations), "
        "cluster-forming p < 0.001, cluster-level FWE p < 0.01 by cluster size "
        "(code/nb01_ale.py; the paper's methods)",
        table_cluster_p=0.01,
        experiments=50,
        subjects=1018,
    ),
}


def published_clusters(name: str, path: Path) -> pd.DataFrame:
    """The authors' clusters: ``x``, ``y``, ``z`` (peak, MNI mm) and ``volume_mm3``.

    Lotter et al.: atlasreader's cluster table (``peak_x``.., ``volume_mm``). Enge et al.:
    their Table 2 (one block of rows per analysis, ``Size (mm3)`` with thousands
    separators); the ALE's rows.
    """
    if name == "lotter2023":
        table = pd.read_csv(path)
        columns = {"peak_x": "x", "peak_y": "y", "peak_z": "z", "volume_mm": "volume_mm3"}
    elif name == "enge2021":
        table = pd.read_csv(path, sep="\t", thousands=",")
        table = table[table["Analysis"].ffill() == "Activation likelihood estimation"]
        columns = {"Peak X": "x", "Peak Y": "y", "Peak Z": "z", "Size (mm3)": "volume_mm3"}
    else:
        raise ValueError(f"{name}: no reader for its cluster table")
    return table.rename(columns=columns)[list(columns.values())].astype(float)


def match(
    published,
    ours: pd.DataFrame,
    labels=None,
    affine=None,
    cut_mm3=0.0,
    forming=None,
    maxima: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each published cluster beside ours: the one holding its peak (``labels``, a 3D array of
    our cluster numbers on the grid of ``affine``), else the one with the nearest peak.

    ``published``: ``((x, y, z), volume_mm3)`` pairs. ``cut_mm3``: the smallest volume our
    cluster-level FWE lets through (0 when it is not a size cut); a published cluster below
    it is ``below_cut``. ``forming``: our supra-threshold components before any cluster-level
    inference (3D labels); ``forming_mm3`` is the volume of the one holding the published peak.
    ``maxima``: our peak table (local maxima 8 mm apart); ``local_max`` is the rank of the
    matched cluster's local maximum nearest the published peak, ``local_max_mm`` its distance.
    """
    peaks = ours[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3]))) if affine is not None else np.nan
    rows = []
    for peak, volume in published:
        distance = np.linalg.norm(peaks - peak, axis=1) if len(peaks) else np.array([np.inf])
        holding = component = 0
        if labels is not None:
            ijk = tuple(np.rint(np.linalg.solve(affine, [*peak, 1.0])[:3]).astype(int))
            holding = int(labels[ijk])
            component = int(forming[ijk]) if forming is not None else 0
        best = (
            int(np.flatnonzero(ours["cluster"].to_numpy() == holding)[0])
            if holding
            else int(np.argmin(distance))
        )
        size = float(ours["size_mm3"].iloc[best]) if len(peaks) else 0.0
        near = distance[best] <= PEAK_MM or holding > 0
        p_fwe = ours["p_fwe"].iloc[best] if len(peaks) and "p_fwe" in ours else np.nan
        local_max, local_mm = 0, np.inf
        if maxima is not None and len(ours):
            own = maxima[maxima["cluster"] == ours["cluster"].iloc[best]]
            gaps = np.linalg.norm(own[["x", "y", "z"]].to_numpy(float) - peak, axis=1)
            if len(gaps):
                local_max, local_mm = int(own["peak"].iloc[gaps.argmin()]), float(gaps.min())
        rows.append(
            {
                "our_cluster": int(ours["cluster"].iloc[best]) if len(peaks) else None,
                "published_peak": tuple(float(v) for v in peak),
                "published_mm3": float(volume),
                "our_peak": tuple(peaks[best]) if len(peaks) else None,
                "our_mm3": size,
                "distance_mm": float(distance[best]),
                "peak_inside": holding > 0,
                "volume_ratio": size / volume,
                "our_p_fwe": float(p_fwe),
                "local_max": local_max,
                "local_max_mm": local_mm,
                "reproduced": bool(near and abs(size / volume - 1) <= VOLUME_SHARE),
                "below_cut": bool(volume < cut_mm3),
                "forming_mm3": float((forming == component).sum() * voxel_mm3)
                if component
                else 0.0,
            }
        )
    return pd.DataFrame(rows)


@dataclass
class Outcome:
    """One reproduction's run: its input, our clusters, the matches and the run's cuts."""

    experiments: int
    subjects: int
    clusters: pd.DataFrame
    matches: pd.DataFrame
    #: summary.csv's row (cluster-forming ALE, cluster-size cut in voxels, ...).
    summary: dict
    seconds: float
    table_cluster_p: float
    #: The analysis's results folder (maps, cluster and peak tables).
    folder: AnalysisFolder

    @property
    def extra(self) -> pd.DataFrame:
        """Our clusters that match no published one."""
        return self.clusters[~self.clusters["cluster"].isin(self.matches["our_cluster"])]

    @property
    def unexplained(self) -> pd.DataFrame:
        """Our further clusters that the authors' table should hold: p below the p their
        code applied."""
        return self.extra[self.extra["p_fwe"] < self.table_cluster_p]

    @property
    def missing(self) -> pd.DataFrame:
        """Published clusters neither reproduced nor below the cut."""
        return self.matches[~self.matches["reproduced"] & ~self.matches["below_cut"]]

    @property
    def reproduced(self) -> bool:
        """Every published cluster reproduced (or below the cut), and no further cluster of
        ours that the authors' table should hold."""
        return self.missing.empty and self.unexplained.empty


def reproduce(
    name: str,
    folder: Path,
    n_iters: int | None = None,
    jobs: int = 2,
    seed: int = 0,
    mirror: Path | None = None,
) -> Outcome:
    """Run one reproduction into ``folder`` (``mnsmeta ale``'s workflow, no report).

    Parameters
    ----------
    name : str
        A key of :data:`REPRODUCTIONS`.
    folder : Path
        Where the Sleuth file and the results folder are written.
    n_iters : int, optional
        Monte Carlo iterations (default: the authors').
    jobs, seed : int
        Processes and seed of the Monte Carlo null.
    mirror : Path, optional
        Folder holding ``published/`` (default: ``$MNSMETA_DATA_MIRROR``; else downloaded).
    """
    from mnsmeta.curation.analyses import Analysis
    from mnsmeta.curation.inputs import read_experiments
    from mnsmeta.data.space import brain_mask_img
    from mnsmeta.meta_analysis.clusters import label_clusters
    from mnsmeta.workflows.own_foci import OwnInput, run_own_foci
    from mnsmeta.workflows.results import ResultsFolder, read_map
    from mnsmeta.workflows.settings import Settings

    entry = REPRODUCTIONS[name]
    foci = fetch_file(entry.foci, mirror=mirror, progress=False)
    table = fetch_file(entry.table, mirror=mirror, progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    # The file as the authors shared it, named for the analysis: mnsmeta reads their table
    # (one row per focus) as it reads Sleuth text.
    sleuth = folder / f"{name}{foci.suffix}"
    sleuth.write_bytes(foci.read_bytes())
    experiments, warnings = read_experiments(sleuth, name, columns=entry.columns)
    settings = Settings(
        n_iters=n_iters or entry.n_iters,
        seed=seed,
        jobs=jobs,
        cluster_forming_p=entry.cluster_forming_p,
        cluster_p=entry.cluster_p,
        cluster_statistic=entry.cluster_statistic,
        progress=False,
    )
    results = ResultsFolder(folder / "results")
    started = time.perf_counter()
    summary, _ = run_own_foci([OwnInput(name, experiments, sleuth, warnings)], None, results,
                              settings)  # fmt: skip
    seconds = time.perf_counter() - started
    analysis = results.analysis(Analysis(name, "ale"))
    ours = analysis.read_clusters()
    row = summary.iloc[0].to_dict()
    voxel_mm3 = float(abs(np.linalg.det(brain_mask_img().affine[:3, :3])))
    # A cluster passes the size cut when it is larger than the (1 - p) quantile of the null.
    size_cut = row["cluster_size_threshold_voxels"] * voxel_mm3
    cut_mm3 = size_cut if entry.cluster_statistic == "size" else 0.0
    published = published_clusters(name, table)
    pairs = [((r.x, r.y, r.z), r.volume_mm3) for r in published.itertuples()]
    # Supra-threshold voxels before cluster-level inference: uncorrected p below the cut.
    brain = np.asarray(brain_mask_img().dataobj) > 0
    forming, _ = label_clusters(brain & (read_map(analysis.map("p")) < entry.cluster_forming_p))
    affine = brain_mask_img().affine
    matches = match(
        pairs, ours, analysis.read_labels(), affine, cut_mm3, forming, analysis.read_peaks()
    )
    return Outcome(
        experiments=len(experiments.experiments),
        subjects=int(experiments.experiments["sample_size"].sum()),
        clusters=ours,
        matches=matches,
        summary=row,
        seconds=seconds,
        table_cluster_p=entry.table_cluster_p,
        folder=analysis,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(REPRODUCTIONS))
    parser.add_argument("--mirror", type=Path, help="folder holding published/ (a mirror)")
    parser.add_argument("--n-iters", type=int, help="default: the authors'")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    entry = REPRODUCTIONS[args.name]
    with tempfile.TemporaryDirectory() as folder:
        outcome = reproduce(args.name, Path(folder), args.n_iters, args.jobs, args.seed,
                            args.mirror)  # fmt: skip
    print(f"{entry.citation}\nsettings: {entry.settings}")
    print(f"input: {outcome.experiments} experiments (published {entry.experiments}), "
          f"{outcome.subjects} subjects (published {entry.subjects}); "
          f"{args.n_iters or entry.n_iters} iterations, {outcome.seconds:.1f} s")  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(outcome.matches.to_string(index=False))
        if len(outcome.extra):
            print(f"{len(outcome.extra)} further cluster(s) of ours, not in the published table:")
            columns = ["cluster", "size_mm3", "peak_x", "peak_y", "peak_z", "p_fwe"]
            print(outcome.extra[columns].to_string(index=False))
    return 0 if outcome.reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
