"""Reproduce published ALE meta-analyses from their authors' own foci files.

Each entry pins the authors' foci file and result table to one commit of their public
repository (a commit-pinned URL never changes), the published clusters, and the settings the
authors used. The file is downloaded into a cache outside git (``--cache``), or read from a
folder holding a copy (``--source DIR``; the file keeps its name); it is never committed.
``mnsmeta ale`` then runs on it with the authors' settings, and every published cluster is
matched to ours: the one of our clusters that holds the published peak (else the nearest
peak), which reproduces it when

- its peak lies within ``PEAK_MM`` of the published one (4 mm: two voxels of the 2 mm grid;
  grids and kernels of different NiMARE releases move a peak by a voxel), or the published
  peak lies inside it (a large cluster has several local maxima of nearly equal ALE, and
  which one is highest is the first thing a small change of the map moves), and
- its volume is within ``VOLUME_SHARE`` of the published one (15 %: the cluster-forming cut
  comes from the null histogram and, for the authors, from NiMARE releases of 2021-2022).

Example (needs the network, or ``--source``)::

    .venv/bin/python benchmarks/reproduce.py lotter2023 --n-iters 10000 --jobs 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

PEAK_MM = 4.0
VOLUME_SHARE = 0.15


@dataclass(frozen=True)
class Reproduction:
    citation: str
    #: ``table``: one row per focus (publication, n, space, x, y, z); ``sleuth``: Sleuth text.
    foci_format: str
    #: ``mnsmeta ale`` options giving the authors' settings.
    options: tuple[str, ...]
    foci_url: str
    table_url: str
    settings: str
    #: Published clusters: peak (MNI mm) and volume (mm3).
    clusters: tuple[tuple[tuple[float, float, float], float], ...]
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
        foci_format="table",
        options=(
            "--cluster-forming-p",
            "0.001",
            "--cluster-p",
            "0.05",
            "--cluster-statistic",
            "mass",
        ),
        foci_url="https://raw.githubusercontent.com/LeonDLotter/MAsync/"
        "4cc742bf3a0d27c8039e4646d7f34895a197a34a/data/ale_coordinates.csv",
        table_url="https://raw.githubusercontent.com/LeonDLotter/MAsync/"
        "4cc742bf3a0d27c8039e4646d7f34895a197a34a/data/ale/ale_thresh_stat_clusters.csv",
        settings="NiMARE ALE, FWECorrector(montecarlo), cluster-forming p < 0.001, "
        "cluster-level FWE p < 0.05 by cluster mass (the authors' src/ale.py default)",
        clusters=(((62.0, -48.0, 16.0), 3040.0),),
        experiments=22,
        subjects=740,
        # The authors pooled each publication's contrasts into one experiment (their
        # csv_to_nimare_ds, single_contrasts=False): no contrast column.
        columns=("contrast=",),
    ),
    "enge2021": Reproduction(
        citation=(
            "Enge A, Abdel Rahman R, Skeide MA (2021). A meta-analysis of fMRI studies of "
            "semantic cognition in children (NeuroImage; volume and pages not verified "
            "here). ALE of all 50 experiments, 1,018 children"
        ),
        foci_format="sleuth",
        options=(
            "--cluster-forming-p",
            "0.001",
            "--cluster-p",
            "0.01",
            "--cluster-statistic",
            "size",
        ),
        foci_url="https://raw.githubusercontent.com/SkeideLab/meta_semantics/"
        "97183276cd253a89bc5af89d7d140ac58da5e9ef/results/ale/all.txt",
        table_url="https://raw.githubusercontent.com/SkeideLab/meta_semantics/"
        "07a59c0d4f4b1f3d87349ce8921364605b9f81f2/results/tables/tab2_children.tsv",
        settings="NiMARE 0.0.9 ALE, FWECorrector(montecarlo, 1,000 iterations), "
        "cluster-forming p < 0.001, cluster-level FWE p < 0.01 by cluster size "
        "(code/nb01_ale.py; the paper's methods)",
        clusters=(
            ((-44.0, 18.0, 24.0), 10232.0),
            ((-4.0, 16.0, 50.0), 5736.0),
            ((-40.0, -52.0, -20.0), 3312.0),
            ((36.0, 22.0, -6.0), 2872.0),
            ((-52.0, -38.0, 4.0), 2504.0),
            ((36.0, -90.0, -6.0), 1856.0),
            ((40.0, -52.0, -18.0), 1464.0),
            ((-38.0, 36.0, 6.0), 88.0),
        ),
        experiments=50,
        subjects=1018,
    ),
}


def match(published, ours: pd.DataFrame, labels=None, affine=None) -> pd.DataFrame:
    """Each published cluster beside ours: the one holding its peak (``labels``, a 3D array of
    our cluster numbers on the grid of ``affine``), else the one with the nearest peak."""
    peaks = ours[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
    rows = []
    for peak, volume in published:
        distance = np.linalg.norm(peaks - peak, axis=1) if len(peaks) else np.array([np.inf])
        holding = 0
        if labels is not None:
            ijk = np.rint(np.linalg.solve(affine, [*peak, 1.0])[:3]).astype(int)
            holding = int(labels[tuple(ijk)])
        best = (
            int(np.flatnonzero(ours["cluster"].to_numpy() == holding)[0])
            if holding
            else int(np.argmin(distance))
        )
        size = float(ours["size_mm3"].iloc[best]) if len(peaks) else 0.0
        near = distance[best] <= PEAK_MM or holding > 0
        rows.append(
            {
                "our_cluster": int(ours["cluster"].iloc[best]) if len(peaks) else None,
                "published_peak": peak,
                "published_mm3": volume,
                "our_peak": tuple(peaks[best]) if len(peaks) else None,
                "our_mm3": size,
                "distance_mm": float(distance[best]),
                "peak_inside": holding > 0,
                "volume_ratio": size / volume,
                "reproduced": bool(near and abs(size / volume - 1) <= VOLUME_SHARE),
            }
        )
    return pd.DataFrame(rows)


def fetch(url: str, cache: Path, source: Path | None) -> Path:
    name = url.rsplit("/", 1)[1]
    if source is not None:
        return source / name
    target = cache / url.split("/")[4] / url.split("/")[5] / name  # repository / commit
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=60) as response:
            target.write_bytes(response.read())
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(REPRODUCTIONS))
    parser.add_argument("--source", type=Path, help="folder holding a copy of the foci file")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/mnsmeta/reproduce")
    parser.add_argument("--n-iters", type=int, default=10000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    entry = REPRODUCTIONS[args.name]
    from mnsmeta.curation.analyses import Analysis
    from mnsmeta.curation.inputs import read_experiments
    from mnsmeta.workflows.results import ResultsFolder

    source = fetch(entry.foci_url, args.cache, args.source)
    with tempfile.TemporaryDirectory() as folder:
        # The file as the authors shared it, named for the analysis (its results folder);
        # mnsmeta reads tables as it reads Sleuth files.
        foci = Path(folder) / f"{args.name}{source.suffix}"
        foci.write_bytes(source.read_bytes())
        experiments = read_experiments(foci, args.name, columns=entry.columns)[0].experiments
        out = Path(folder) / "out"
        columns = [option for value in entry.columns for option in ("--column", value)]
        command = [
            str(Path(sys.executable).parent / "mnsmeta"), "ale", str(foci), "--output",
            str(out), "--n-iters", str(args.n_iters), "--jobs", str(args.jobs), "--seed",
            str(args.seed), "--no-progress", "--no-report", *columns, *entry.options,
        ]  # fmt: skip
        subprocess.run(command, check=True)
        folder_of = ResultsFolder(out).analysis(Analysis(args.name, "ale"))
        ours = folder_of.read_clusters()
        image = nib.load(folder_of.thresholded().labels)
        labels, affine = np.asarray(image.dataobj), image.affine
    subjects = int(experiments["sample_size"].sum())
    print(f"{entry.citation}\nsettings: {entry.settings}")
    print(f"input ({entry.foci_format}): {len(experiments)} experiments (published "
          f"{entry.experiments}), {subjects} subjects (published {entry.subjects})")  # fmt: skip
    result = match(entry.clusters, ours, labels, affine)
    print(result.to_string(index=False))
    extra = ours[~ours["cluster"].isin(result["our_cluster"])]
    if len(extra):
        print(f"{len(extra)} further cluster(s) of ours, not in the published table:")
        print(extra[["cluster", "size_mm3", "peak_x", "peak_y", "peak_z"]].to_string(index=False))
    return 0 if result["reproduced"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
