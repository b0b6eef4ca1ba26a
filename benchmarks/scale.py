"""`make bench`, second part: memory, and how the Monte Carlo null scales with the foci.

1. Peak memory at 10,000 iterations on MNS, the whole fit and correction: our loop against
   NiMARE's loop. NiMARE's loop is run with its up-front random foci (n_foci x n_iters x 3
   int64 and their indices) and our iterations inside it, in threads: its memory without
   NiMARE's per-iteration MA maps and loky workers, so a lower bound of NiMARE's own peak
   (NiMARE itself would take about 25 minutes here).
2. The scaling curve: time per Monte Carlo iteration (cluster-level FWE) against total foci,
   on synthetic sets of 36 foci per experiment (Neurosynth's mean), N = 20, drawn uniformly
   in the brain mask, from 1,008 to 500,004 foci (Neurosynth 0.7 holds 507,891): ours in
   threads and on a Dask LocalCluster of 1 and 2 single-threaded workers (the same null,
   checked), NiMARE's ``ALE`` + ``FWECorrector`` up to ``--nimare-max-foci``. Our
   cluster-forming cut is the 0.999 quantile of the set's own ALE map (NiMARE's histogram
   null, from which its cut comes, cannot be computed at these sizes; the cut sets how many
   voxels are labelled, not the stamping, which dominates).
3. A whole Neurosynth-scale ALE (13,889 experiments, 500,004 foci) as ``mnsmeta`` runs it:
   the streaming fit (:mod:`mnsmeta.meta_analysis.engine.streaming`) and cluster-level FWE
   with ``--whole-iters`` iterations (1,000).

Every point runs in a fresh process, so that its peak resident memory is its own.

    python benchmarks/scale.py [--jobs 2] [--nimare-max-foci 20016]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

#: Experiments per point of the curve; 36 foci each.
EXPERIMENTS = (28, 139, 556, 2778, 13889)
FOCI_PER_EXPERIMENT = 36
SAMPLE_SIZE = 20


def peak_mib() -> float:
    """Peak resident memory of this process and of its largest finished child (MiB)."""
    return round(
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024,
        1,
    )


def synthetic_ijk(n_experiments: int, seed: int = 0):
    """Voxel indices of a synthetic set (experiments contiguous) and the brain mask."""
    import numpy as np

    from mnsmeta.data.space import brain_mask_img

    mask = brain_mask_img()
    voxels = np.argwhere(mask.get_fdata() > 0)
    rng = np.random.default_rng(seed)
    return voxels[rng.integers(0, len(voxels), n_experiments * FOCI_PER_EXPERIMENT)], mask


def measure_ours(n_experiments: int, n_iters: int, jobs: int, dask_workers: int) -> dict:
    import numpy as np

    from mnsmeta.meta_analysis.engine import montecarlo
    from mnsmeta.meta_analysis.engine.kernels import KernelStamper

    ijk, mask = synthetic_ijk(n_experiments)
    experiment = np.repeat(np.arange(n_experiments), FOCI_PER_EXPERIMENT)
    sizes = np.full(len(ijk), SAMPLE_SIZE)
    started = time.perf_counter()
    observed = KernelStamper(mask, experiment, sizes).ale(ijk)
    observed_s = time.perf_counter() - started
    cut = float(np.quantile(observed, 0.999))
    bounds = np.arange(0, len(ijk) + 1, FOCI_PER_EXPERIMENT)
    plan = montecarlo.Plan(mask, bounds, np.full(n_experiments, SAMPLE_SIZE))
    montecarlo.monte_carlo_null(plan, cut, 1, 0)  # warm-up: numba's cache, buffers
    if dask_workers:
        from mnsmeta.meta_analysis.engine.scaleout import dask_cluster

        with dask_cluster(local_workers=dask_workers):
            started = time.perf_counter()
            null = montecarlo.monte_carlo_null(plan, cut, n_iters, 0, dask_workers)
            seconds = time.perf_counter() - started
        same = bool(np.array_equal(null, montecarlo.monte_carlo_null(plan, cut, n_iters, 0, 2)))
    else:
        started = time.perf_counter()
        montecarlo.monte_carlo_null(plan, cut, n_iters, 0, jobs)
        seconds = time.perf_counter() - started
        same = None
    return {
        "engine": f"ours, Dask {dask_workers} workers"
        if dask_workers
        else f"ours, {jobs} threads",
        "foci": len(ijk),
        "experiments": n_experiments,
        "observed_map_s": round(observed_s, 2),
        "s_per_iter": round(seconds / n_iters, 4),
        "n_iters": n_iters,
        "peak_mib": peak_mib(),
        "same_null_as_threads": same,
    }


def synthetic_dataset(n_experiments: int):
    """The synthetic set as a NiMARE Dataset (MNI millimetres), and its number of foci."""
    from nimare.dataset import Dataset

    ijk, mask = synthetic_ijk(n_experiments)
    xyz = ijk @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    source = {}
    for e in range(n_experiments):
        rows = xyz[e * FOCI_PER_EXPERIMENT : (e + 1) * FOCI_PER_EXPERIMENT]
        coords = {"space": "MNI", "x": rows[:, 0].tolist(), "y": rows[:, 1].tolist()}
        coords["z"] = rows[:, 2].tolist()
        source[f"e{e}"] = {
            "contrasts": {"1": {"coords": coords, "metadata": {"sample_sizes": [SAMPLE_SIZE]}}}
        }
    return Dataset(source, target="mni152_2mm"), len(ijk)


def measure_whole(n_experiments: int, n_iters: int, jobs: int) -> dict:
    """A whole ALE as ``mnsmeta`` runs it (``ale.fit_ale``, streaming from 100,000 foci):
    observed map, uncorrected null, cluster-level FWE with ``n_iters`` iterations."""
    from mnsmeta.meta_analysis import ale

    started = time.perf_counter()
    data, n_foci = synthetic_dataset(n_experiments)
    dataset_s = time.perf_counter() - started
    started = time.perf_counter()
    _, result = ale.fit_ale(data, n_iters, 0, jobs)
    seconds = time.perf_counter() - started
    return {
        "foci": n_foci,
        "experiments": n_experiments,
        "n_iters": n_iters,
        "dataset_s": round(dataset_s, 1),
        "fit_and_fwe_min": round(seconds / 60, 2),
        "fwe_significant_voxels": int((ale.cluster_fwe_map(result) > 0).sum()),
        "peak_mib": peak_mib(),
    }


def measure_nimare(n_experiments: int, jobs: int) -> dict:
    """NiMARE's fit and correction; per iteration from the difference of 10 and 30."""
    from nimare.correct import FWECorrector
    from nimare.meta.cbma.ale import ALE

    data, n_foci = synthetic_dataset(n_experiments)
    started = time.perf_counter()
    result = ALE(random_state=0).fit(data)
    fit_s = time.perf_counter() - started
    seconds = {}
    for n in (10, 30):
        started = time.perf_counter()
        FWECorrector(
            method="montecarlo", voxel_thresh=0.001, n_iters=n, n_cores=jobs, vfwe_only=False
        ).transform(result)
        seconds[n] = time.perf_counter() - started
    return {
        "engine": f"NiMARE, {jobs} processes",
        "foci": n_foci,
        "experiments": n_experiments,
        "fit_s": round(fit_s, 2),
        "s_per_iter": round((seconds[30] - seconds[10]) / 20, 4),
        "n_iters": 30,
        "peak_mib": peak_mib(),
    }


def measure_memory(draws: str, n_iters: int, jobs: int) -> dict:
    """Fit and correct MNS at ``n_iters`` with our loop or NiMARE's (module docstring)."""
    from bench import dataset
    from nimare.correct import FWECorrector

    from mnsmeta.meta_analysis import ale
    from mnsmeta.meta_analysis.nimare_adapter.estimators import fast_ale_estimator

    data = dataset("MNS")
    ale.settle_heap()
    started = time.perf_counter()
    result = fast_ale_estimator(draws=draws, random_state=0).fit(data)
    FWECorrector(
        method="montecarlo", voxel_thresh=0.001, n_iters=n_iters, n_cores=jobs, vfwe_only=False
    ).transform(result)
    return {
        "loop": "ours" if draws == "blocks" else "NiMARE's",
        "foci": len(data.coordinates),
        "n_iters": n_iters,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_mib": peak_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--nimare-max-foci", type=int, default=20016)
    parser.add_argument("--memory-iters", type=int, default=10_000)
    parser.add_argument("--points", type=int, nargs="*", default=list(EXPERIMENTS),
                        help="experiments per point of the curve")  # fmt: skip
    parser.add_argument("--whole-iters", type=int, default=1000,
                        help="iterations of the whole Neurosynth-scale ALE; 0: skip")  # fmt: skip
    parser.add_argument("--one", nargs=3, metavar=("KIND", "SIZE", "WORKERS"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.one:
        kind, size, workers = args.one[0], int(args.one[1]), int(args.one[2])
        if kind == "memory":
            row = measure_memory(["blocks", "nimare"][workers], size, args.jobs)
        elif kind == "nimare":
            row = measure_nimare(size, args.jobs)
        elif kind == "whole":
            row = measure_whole(size, workers, args.jobs)
        else:
            # At least two blocks per worker, and ~30 s of work at the largest sizes.
            n_iters = max(100, min(1000, 400_000 * 50 // (size * FOCI_PER_EXPERIMENT)))
            row = measure_ours(size, n_iters - n_iters % 50, args.jobs, workers)
        print(json.dumps(row))
        return

    import pandas as pd

    def one(*extra):
        command = [sys.executable, __file__, "--jobs", str(args.jobs), "--one", *map(str, extra)]
        output = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(output.stdout.strip().splitlines()[-1])
        print(f"  {row}", flush=True)
        return row

    print(f"machine: {os.cpu_count()} cores, {args.jobs} threads/processes/workers")
    print(f"peak memory, MNS, {args.memory_iters} iterations, fit + correction:")
    memory = pd.DataFrame([one("memory", args.memory_iters, k) for k in (0, 1)])
    print(memory.to_string(index=False))
    ratio = memory["peak_mib"][0] / memory["peak_mib"][1]
    print(f"ours / NiMARE's loop (a lower bound of NiMARE's): {ratio:.2f}")
    print("time per Monte Carlo iteration against total foci:")
    rows = []
    for size in args.points:
        rows.append(one("ours", size, 0))
        for workers in (1, 2):
            rows.append(one("ours", size, workers))
        if size * FOCI_PER_EXPERIMENT <= args.nimare_max_foci:
            rows.append(one("nimare", size, 0))
    curve = pd.DataFrame(rows)
    print(curve.to_string(index=False))
    ours = curve[curve["engine"].str.startswith("ours, ")].query("same_null_as_threads.isnull()")
    per_focus = ours["s_per_iter"] / ours["foci"] * 1e6
    print(f"ours, microseconds per focus per iteration: {per_focus.round(2).tolist()}")
    largest = ours.iloc[-1]
    print(
        f"{int(largest['foci'])} foci: 1,000 iterations in "
        f"{largest['s_per_iter'] * 1000 / 60:.1f} min of Monte Carlo"
    )
    if args.whole_iters:
        print(f"a whole ALE of {EXPERIMENTS[-1]} experiments (cluster-level FWE):")
        whole = one("whole", EXPERIMENTS[-1], args.whole_iters)
        curve = pd.concat([curve, pd.DataFrame([whole | {"engine": "ours, whole ALE"}])])
    from pathlib import Path

    from mnsmeta.workflows.results import ResultsFolder, write_csv

    memory = memory.assign(engine=memory.pop("loop") + " loop, MNS memory")
    folder = ResultsFolder(Path("results"))
    print(f"wrote {write_csv(pd.concat([memory, curve]), folder.bench_scale)}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
