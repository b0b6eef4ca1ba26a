"""Reproduce published ALE meta-analyses from their authors' own foci files.

Each entry pins the authors' foci file and result table to one commit of their public
repository (a commit-pinned URL never changes), the published clusters, and the settings the
authors used. The file is downloaded into a cache outside git (``--cache``), or read from a
folder holding a copy (``--source DIR``; the file keeps its name); it is never committed.
``mnsmeta ale`` then runs on it and every published cluster is matched to ours:

- a peak within ``PEAK_MM`` (4 mm: two voxels of the 2 mm grid; the Monte Carlo and the ALE
  kernels of different NiMARE versions move a peak by a voxel, not more), and
- a volume within ``VOLUME_SHARE`` (15 %: the cluster-forming cut comes from the null
  histogram and, for the authors, from NiMARE releases of 2021-2022).

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

import numpy as np
import pandas as pd

PEAK_MM = 4.0
VOLUME_SHARE = 0.15


@dataclass(frozen=True)
class Reproduction:
    citation: str
    #: ``mnsmeta ale`` options giving the authors' settings.
    options: tuple[str, ...]
    foci_url: str
    table_url: str
    settings: str
    #: Published clusters: peak (MNI mm) and volume (mm3).
    clusters: tuple[tuple[tuple[float, float, float], float], ...]
    experiments: int
    subjects: int


REPRODUCTIONS = {
    "lotter2023": Reproduction(
        citation=(
            "Lotter LD, Kohl SH, et al. (2023). Revealing the neurobiology underlying "
            "interpersonal neural synchronization with multimodal data fusion. Neurosci "
            "Biobehav Rev 146:105042. doi:10.1016/j.neubiorev.2023.105042 (fMRI ALE: 22 "
            "experiments, 740 subjects)"
        ),
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
    ),
}


def sleuth_from_table(table: pd.DataFrame) -> str:
    """A Sleuth text (MNI) from a table of foci with one row per focus.

    Columns ``publication`` (one experiment each, in order of appearance), ``n`` (its
    subjects), ``space`` (``MNI`` or ``TAL``) and ``x``, ``y``, ``z``. Talairach foci are
    converted with NiMARE's ``tal2mni`` (as its Sleuth reader converts them).
    """
    from nimare.utils import tal2mni

    blocks = ["// Reference=MNI"]
    for name, rows in table.groupby("publication", sort=False):
        sizes = rows["n"].unique()
        if len(sizes) != 1:
            raise ValueError(f"{name}: several sample sizes {sorted(sizes)}")
        xyz = rows[["x", "y", "z"]].to_numpy(float)
        spaces = set(rows["space"].str.upper())
        if spaces == {"TAL"}:
            xyz = tal2mni(xyz)
        elif spaces != {"MNI"}:
            raise ValueError(f"{name}: space {sorted(spaces)}: expected MNI or TAL")
        lines = "\n".join("\t".join(f"{v:.2f}" for v in row) for row in xyz)
        blocks.append(f"// {name}\n// Subjects={int(sizes[0])}\n{lines}\n")
    return "\n".join(blocks) + "\n"


def match(published, ours: pd.DataFrame) -> pd.DataFrame:
    """Each published cluster beside our nearest cluster peak, and whether it is within
    tolerance."""
    peaks = ours[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
    rows = []
    for peak, volume in published:
        distance = np.linalg.norm(peaks - peak, axis=1) if len(peaks) else np.array([np.inf])
        best = int(np.argmin(distance))
        size = float(ours["size_mm3"].iloc[best]) if len(peaks) else 0.0
        rows.append(
            {
                "our_cluster": int(ours["cluster"].iloc[best]) if len(peaks) else None,
                "published_peak": peak,
                "published_mm3": volume,
                "our_peak": tuple(peaks[best]) if len(peaks) else None,
                "our_mm3": size,
                "distance_mm": float(distance[best]),
                "volume_ratio": size / volume,
                "reproduced": distance[best] <= PEAK_MM and abs(size / volume - 1) <= VOLUME_SHARE,
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
    table = pd.read_csv(fetch(entry.foci_url, args.cache, args.source))
    with tempfile.TemporaryDirectory() as folder:
        sleuth = Path(folder) / f"{args.name}.txt"
        sleuth.write_text(sleuth_from_table(table))
        out = Path(folder) / "out"
        command = [
            str(Path(sys.executable).parent / "mnsmeta"), "ale", str(sleuth), "--output",
            str(out), "--n-iters", str(args.n_iters), "--jobs", str(args.jobs), "--seed",
            str(args.seed), "--no-progress", "--no-report", *entry.options,
        ]  # fmt: skip
        subprocess.run(command, check=True)
        ours = pd.read_csv(out / args.name / "clusters.csv")
    experiments = table["publication"].nunique()
    subjects = int(table.groupby("publication", sort=False)["n"].first().sum())
    print(f"{entry.citation}\nsettings: {entry.settings}")
    print(f"input: {experiments} experiments (published {entry.experiments}), {subjects} "
          f"subjects (published {entry.subjects})")  # fmt: skip
    result = match(entry.clusters, ours)
    print(result.to_string(index=False))
    extra = ours[~ours["cluster"].isin(result["our_cluster"])]
    if len(extra):
        print(f"{len(extra)} further cluster(s) of ours, not in the published table:")
        print(extra[["cluster", "size_mm3", "peak_x", "peak_y", "peak_z"]].to_string(index=False))
    return 0 if result["reproduced"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
