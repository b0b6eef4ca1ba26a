"""`make bench`: NiMARE and our fast engine side by side, measured in the same run.

Each (dataset, engine) pair runs in a fresh process so that its peak memory is its own:
fit time, Monte Carlo iterations per second for cluster-level FWE (marginal: the time of a
20-iteration correction is subtracted; ``speedup_whole`` compares whole corrections), and
peak resident memory (the process and its workers). The engines run in turn, NiMARE then
ours, ``--repeats`` times (A B A B ...), and each speed-up is the median of the pairs' ratios
with their range (a noisy machine moves a pair, not the median). The table is printed and
written to results/bench.csv, with the machine's core count.

    python benchmarks/bench.py [--n-iters 500] [--jobs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

DATASETS = ("SAD", "MNS", "synthetic200")
ENGINES = ("nimare", "fast")
SHORT_RUN = 20  # iterations of the run whose time is subtracted (fixed costs)


def dataset(name: str):
    import numpy as np

    from mnsmeta.curation.experiments import build_experiments
    from mnsmeta.curation.records import load_curation
    from mnsmeta.meta_analysis.datasets import to_dataset

    if name != "synthetic200":
        return to_dataset(build_experiments(load_curation(Path("coordinates")), name))
    # 200 experiments of 20 foci each, drawn in the brain mask, N = 20: a large meta-analysis.
    from nimare.dataset import Dataset

    from mnsmeta.data.space import brain_mask_img

    mask = brain_mask_img()
    rng = np.random.default_rng(0)
    voxels = np.argwhere(mask.get_fdata() > 0)
    source = {}
    for e in range(200):
        ijk = voxels[rng.integers(0, len(voxels), 20)]
        xyz = (np.c_[ijk, np.ones(len(ijk))] @ mask.affine.T)[:, :3]
        source[f"s{e}"] = {
            "contrasts": {
                "1": {
                    "coords": {
                        "space": "MNI",
                        "x": xyz[:, 0].tolist(),
                        "y": xyz[:, 1].tolist(),
                        "z": xyz[:, 2].tolist(),
                    },
                    "metadata": {"sample_sizes": [20]},
                }
            }
        }
    return Dataset(source, target="mni152_2mm")


def write_foci(name: str, path: str) -> None:
    """Write a dataset's experiments as a Sleuth file (for JALE, in its own environment)."""
    from mnsmeta.curation.sleuth import SleuthExperiment, write_sleuth

    warnings.simplefilter("ignore")
    data = dataset(name)
    sizes = data.metadata.set_index("id")["sample_sizes"]
    experiments = [
        SleuthExperiment(
            str(study),
            int(sizes[study][0]),
            "MNI",
            [tuple(row) for row in foci[["x", "y", "z"]].to_numpy()],
        )
        for study, foci in data.coordinates.groupby("id", sort=False)
    ]
    write_sleuth(Path(path), experiments)


def measure_jale(jale_python: str, name: str, n_iters: int, jobs: int) -> dict:
    """JALE's null on the same experiments, or why it could not run."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        foci = Path(folder) / "jale_input.txt"
        subprocess.run(
            [sys.executable, __file__, "--write-foci", name, str(foci)],
            check=True,
            capture_output=True,
        )
        process = subprocess.run(
            [
                jale_python,
                str(Path(__file__).with_name("jale_null.py")),
                str(foci),
                "--n-iters",
                str(n_iters),
                "--jobs",
                str(jobs),
            ],
            capture_output=True,
            text=True,
        )
    if process.returncode != 0:
        return {"jale_it_s": float("nan"), "jale_note": process.stderr.strip().splitlines()[-1]}
    result = json.loads(process.stdout.strip().splitlines()[-1])
    return {"jale_it_s": result["iters_per_s"], "jale_peak_mib": result["peak_rss_mib"]}


def measure(name: str, engine: str, n_iters: int, jobs: int) -> dict:
    from mnsmeta.meta_analysis import ale

    warnings.simplefilter("ignore")
    data = dataset(name)
    started = time.perf_counter()
    ale.fit_ale(data, 1, 0, jobs, engine=engine)  # warm-up: imports, numba cache, kernels
    warm = time.perf_counter() - started
    from nimare.correct import FWECorrector

    started = time.perf_counter()
    if engine == "fast":
        from mnsmeta.meta_analysis.nimare_adapter.estimators import fast_ale_estimator

        estimator = fast_ale_estimator(random_state=0)
    else:
        from nimare.meta.cbma.ale import ALE

        estimator = ALE(random_state=0)
    result = estimator.fit(data)
    fit_seconds = time.perf_counter() - started
    # Iterations per second are marginal: (n - n0) / (t(n) - t(n0)), so that the fixed cost
    # of a correction (NiMARE's map outputs, a garbage collection: ~0.5 s) does not count
    # as Monte Carlo time; the whole correction's rate is reported too.
    seconds = {}
    for n in (SHORT_RUN, n_iters):
        started = time.perf_counter()
        FWECorrector(
            method="montecarlo", voxel_thresh=0.001, n_iters=n, n_cores=jobs, vfwe_only=False
        ).transform(result)
        seconds[n] = time.perf_counter() - started
    fwe_seconds = seconds[n_iters] - seconds[SHORT_RUN]
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    coordinates = data.coordinates
    return {
        "dataset": name,
        "engine": engine,
        "experiments": int(coordinates["id"].nunique()),
        "foci": len(coordinates),
        "n_iters": n_iters,
        "fit_s": round(fit_seconds, 3),
        "warmup_s": round(warm, 2),
        "iters_per_s": round((n_iters - SHORT_RUN) / fwe_seconds, 2),
        "whole_iters_per_s": round(n_iters / seconds[n_iters], 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }


def measure_jackknife(name: str, n_iters: int, jobs: int) -> dict:
    """The jackknife's Monte Carlo work: one null per leave-one-out subset and the full set.

    NiMARE would fit the n + 1 datasets one by one, so its cost is n + 1 times its
    iterations; ours draws each random dataset once for all of them
    (mnsmeta.meta_analysis.engine.shared_nulls).
    """
    import numpy as np

    from mnsmeta.data.space import brain_mask_img
    from mnsmeta.meta_analysis import ale
    from mnsmeta.meta_analysis.engine.shared_nulls import leave_one_out_null
    from mnsmeta.meta_analysis.nimare_adapter import cluster_forming_cut

    warnings.simplefilter("ignore")
    data = dataset(name)
    coordinates = data.coordinates
    ids = list(data.ids)
    counts = coordinates.groupby("id").size().reindex(ids).to_numpy()
    sizes = np.array(
        [int(np.ravel(s)[0]) for s in data.metadata.set_index("id")["sample_sizes"][ids]]
    )
    estimator, _ = ale.fit_ale(data, 1, 0, jobs)
    cuts = [cluster_forming_cut(estimator, 0.001)] * (len(ids) + 1)
    leave_one_out_null(brain_mask_img(), sizes, counts, cuts, 2, 0, jobs)  # warm-up
    started = time.perf_counter()
    leave_one_out_null(brain_mask_img(), sizes, counts, cuts, n_iters, 0, jobs)
    seconds = time.perf_counter() - started
    return {
        "dataset": name,
        "subsets": len(ids) + 1,
        "jackknife_it_s": round(n_iters / seconds, 2),
        "jackknife_subset_it_s": round(n_iters * (len(ids) + 1) / seconds, 1),
    }


def measure_subtraction(engine: str, n_iters: int, jobs: int) -> dict:
    """The FWE-corrected ALE subtraction SAD - BPD (permutations and cluster null).

    As ``mnsmeta run`` runs it: restricted to the two groups' significant voxels (here their
    uncorrected p < 0.001 maps, so that the bench needs no Monte Carlo of its own).
    """
    import nibabel as nib

    from mnsmeta.meta_analysis import ale

    warnings.simplefilter("ignore")
    data = [dataset(name) for name in ("SAD", "BPD")]
    masks = []
    for group in data:
        _, result = ale.fit_ale(group, 1, 0, jobs)
        p = result.get_map("p", return_type="image")
        masks.append(nib.Nifti1Image((p.get_fdata() < 0.001).astype("float32"), p.affine))
    ale.fit_subtraction(*data, *masks, 2, 0, jobs, engine=engine)  # warm-up: numba, caches
    started = time.perf_counter()
    ale.fit_subtraction(*data, *masks, n_iters, 0, jobs, engine=engine)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "engine": engine,
        "iters_per_s": round(n_iters / seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-iters", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("DATASET", "ENGINE"))
    parser.add_argument(
        "--jale-python", help="Python of a virtual environment with jale installed."
    )
    parser.add_argument("--jale-iters", type=int, default=50)
    parser.add_argument("--write-foci", nargs=2, metavar=("DATASET", "PATH"))
    parser.add_argument("--jackknife", metavar="DATASET")
    parser.add_argument("--subtraction", metavar="ENGINE")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs per dataset")
    parser.add_argument(
        "--subtraction-iters",
        type=int,
        help="permutations of the subtraction pairs (default: --n-iters); its rate is of whole "
        "fits, so a few hundred permutations measure mostly fixed costs",
    )
    args = parser.parse_args()
    if args.subtraction:
        print(json.dumps(measure_subtraction(args.subtraction, args.n_iters, args.jobs)))
        return
    if args.write_foci:
        write_foci(*args.write_foci)
        return
    if args.jackknife:
        print(json.dumps(measure_jackknife(args.jackknife, args.n_iters, args.jobs)))
        return
    if args.one:
        print(json.dumps(measure(*args.one, args.n_iters, args.jobs)))
        return
    import os

    import pandas as pd

    def one(*extra, n_iters=args.n_iters):
        """One measurement in a fresh process (its last printed line, JSON)."""
        command = [sys.executable, __file__, *extra, "--n-iters", str(n_iters),
                   "--jobs", str(args.jobs)]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True)
        return json.loads(output.stdout.strip().splitlines()[-1])

    rows = []
    for name in DATASETS:
        for repeat in range(args.repeats):
            for engine in ENGINES:  # in turn: A B A B ...
                rows.append(one("--one", name, engine) | {"repeat": repeat})
                print(f"measured {name} {engine}: {rows[-1]['iters_per_s']} it/s", flush=True)
    table = pd.DataFrame(rows)
    # Ratios pair by pair (the same repeat of both engines), then their median and range.
    pairs = table.pivot_table(index=["dataset", "repeat"], columns="engine")
    ratio = pairs[("iters_per_s", "fast")] / pairs[("iters_per_s", "nimare")]
    ratio_whole = pairs[("whole_iters_per_s", "fast")] / pairs[("whole_iters_per_s", "nimare")]
    wide = table.groupby(["dataset", "engine"]).median(numeric_only=True).unstack("engine")
    by_dataset = ratio.groupby(level="dataset")
    summary = pd.DataFrame(
        {
            "experiments": wide[("experiments", "fast")],
            "foci": wide[("foci", "fast")],
            "nimare_it_s": wide[("iters_per_s", "nimare")],
            "fast_it_s": wide[("iters_per_s", "fast")],
            "speedup": by_dataset.median().round(2),
            "speedup_min": by_dataset.min().round(2),
            "speedup_max": by_dataset.max().round(2),
            "speedup_whole": ratio_whole.groupby(level="dataset").median().round(2),
            "nimare_fit_s": wide[("fit_s", "nimare")],
            "fast_fit_s": wide[("fit_s", "fast")],
            "nimare_peak_mib": wide[("peak_rss_mib", "nimare")],
            "fast_peak_mib": wide[("peak_rss_mib", "fast")],
            "memory_ratio": (
                wide[("peak_rss_mib", "fast")] / wide[("peak_rss_mib", "nimare")]
            ).round(2),
        }
    ).reindex(list(DATASETS))
    command = [sys.executable, __file__, "--n-iters", str(args.n_iters), "--jobs", str(args.jobs)]
    jackknife = pd.DataFrame(
        [
            json.loads(
                subprocess.run(
                    [*command, "--jackknife", name],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            for name in ("SAD", "MNS")
        ]
    ).set_index("dataset")
    summary = summary.join(jackknife)
    # NiMARE reruns each subset: its jackknife throughput is its it/s, per subset.
    summary["jackknife_vs_nimare"] = (
        summary["jackknife_subset_it_s"] / summary["nimare_it_s"]
    ).round(1)
    jale_note = "JALE: not run (give --jale-python; `make bench` installs it in .venv-jale)"
    if args.jale_python and Path(args.jale_python).exists():
        jale = pd.DataFrame(
            {
                name: measure_jale(args.jale_python, name, args.jale_iters, args.jobs)
                for name in DATASETS
            }
        ).T
        summary = summary.join(jale)
        summary["fast_vs_jale"] = (summary["fast_it_s"] / summary["jale_it_s"]).round(1)
        jale_note = (
            f"JALE 0.2.10 in its own virtual environment: compute_monte_carlo_null as its "
            f"main effect calls it, TFCE off, {args.jale_iters} iterations"
        )
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))}"
        f" usable), Python {platform.python_version()}, {args.jobs} processes/threads, "
        f"{args.n_iters} iterations, cluster-level FWE, {args.repeats} pairs of runs (A B A B)"
    )
    print(summary.to_string())
    print(jale_note)
    subtraction_iters = args.subtraction_iters or args.n_iters
    runs = [
        {engine: one("--subtraction", engine, n_iters=subtraction_iters) for engine in ENGINES}
        for _ in range(args.repeats)
    ]
    ratios = pd.Series([r["fast"]["iters_per_s"] / r["nimare"]["iters_per_s"] for r in runs])
    speed = {e: pd.Series([r[e]["iters_per_s"] for r in runs]).median() for e in ENGINES}
    print(
        f"subtraction SAD - BPD with its cluster-level FWE null ({subtraction_iters} "
        f"permutations): NiMARE {speed['nimare']:.1f} it/s,"
        f" ours {speed['fast']} it/s; speed-up {ratios.median():.1f}x (range "
        f"{ratios.min():.1f}-{ratios.max():.1f}, {len(ratios)} pairs)"
    )
    summary.loc["subtraction SAD-BPD", ["nimare_it_s", "fast_it_s"]] = [
        speed["nimare"],
        speed["fast"],
    ]
    summary.loc["subtraction SAD-BPD", ["speedup", "speedup_min", "speedup_max"]] = [
        round(ratios.median(), 2),
        round(ratios.min(), 2),
        round(ratios.max(), 2),
    ]
    from mnsmeta.workflows.results import ResultsFolder, write_csv

    print(f"wrote {write_csv(summary, ResultsFolder(Path('results')).bench, index=True)}")


if __name__ == "__main__":
    main()
