"""Time JALE's Monte Carlo null on the experiments of a Sleuth file (run in JALE's own venv).

JALE's main-effect analysis calls ``compute_monte_carlo_null`` once per iteration, with its
kernels from the sample sizes and the foci counts; the null does not depend on where the
observed foci are, so only those are read here. TFCE is off, as in NiMARE.

    python jale_null.py foci.txt --n-iters 100 --jobs 2
"""

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd


def read_sleuth(path):
    experiments, current = [], None
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.lower().startswith("// subjects="):
            current = {"Subjects": int(line.split("=")[1]), "NumberOfFoci": 0}
            experiments.append(current)
        elif line and not line.startswith("//") and current is not None:
            current["NumberOfFoci"] += 1
    return pd.DataFrame(experiments)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("foci")
    parser.add_argument("--n-iters", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    from jale.core.utils.compute import compute_monte_carlo_null
    from jale.core.utils.kernel import create_kernel_array
    from joblib import Parallel, delayed

    exp_df = read_sleuth(args.foci)
    kernels = create_kernel_array(exp_df)
    # As jale.core.analyses.main_effect sets up its histogram.
    max_ma = np.prod([1 - np.max(kernel) for kernel in kernels])
    bin_steps = 0.0001
    bin_edges = np.arange(0.00005, 1 - max_ma + 0.001, bin_steps)
    bin_centers = np.arange(0, 1 - max_ma + 0.001, bin_steps)
    step = int(1 / bin_steps)
    started = time.perf_counter()
    Parallel(n_jobs=args.jobs)(
        delayed(compute_monte_carlo_null)(
            num_foci=exp_df.NumberOfFoci,
            kernels=kernels,
            bin_edges=bin_edges,
            bin_centers=bin_centers,
            step=step,
            cluster_forming_threshold=0.001,
            tfce_enabled=False,
        )
        for _ in range(args.n_iters)
    )
    seconds = time.perf_counter() - started
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(
        json.dumps(
            {
                "iters_per_s": round(args.n_iters / seconds, 2),
                "peak_rss_mib": round(peak / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
