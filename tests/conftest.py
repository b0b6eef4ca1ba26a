"""Shared fixtures: the database mirror, and small synthetic curation folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MIRROR = REPO.parent / "shared" / "data"

# Tests read the real databases through the local mirror when it is beside the clone
# (as in CI); otherwise they download them once into the user cache.
if not os.environ.get("MNSMETA_DATA_MIRROR") and (SHARED_MIRROR / "SHA256SUMS").is_file():
    os.environ["MNSMETA_DATA_MIRROR"] = str(SHARED_MIRROR)

RECORD_HEADER = (
    "study_id\tgroup\tmodality\tdesign\tstatus\treason\tn_patients\tn_controls\tn_total"
    "\tn_source\tdirection\tspace\tsource_db\tflags\tnote\tsample\tsample_evidence\ttable_mix"
    "\ttable_mix_evidence\tcoverage\tcoverage_evidence\tkeep_copy\n"
)
MANUAL_HEADER = "study_id\texperiment\tspace\ttable\tx\ty\tz\n"


def record_line(study_id, group="SAD", status="included", reason="", n=("", "", ""), **extra):
    """One records line with sensible defaults, for building test files."""
    fields = {
        "study_id": study_id,
        "group": group,
        "modality": extra.get("modality", "task_fmri"),
        "design": extra.get("design", "patients_vs_controls"),
        "status": status,
        "reason": reason,
        "n_patients": str(n[0]),
        "n_controls": str(n[1]),
        "n_total": str(n[2]),
        "n_source": extra.get("n_source", "https://pubmed.ncbi.nlm.nih.gov/1/" if any(n) else ""),
        "direction": extra.get("direction", ""),
        "space": extra.get("space", ""),
        "source_db": extra.get("source_db", ""),
        "flags": "",
        "note": extra.get("note", ""),
        "sample": extra.get("sample", ""),
        "sample_evidence": "metadata: test" if extra.get("sample") else "",
        "table_mix": extra.get("table_mix", ""),
        "table_mix_evidence": "abstract: test" if extra.get("table_mix") else "",
        "coverage": extra.get("coverage", ""),
        "coverage_evidence": "abstract: test" if extra.get("coverage") else "",
        "keep_copy": extra.get("keep_copy", ""),
    }
    return "\t".join(fields.values()) + "\n"


@pytest.fixture(scope="session")
def project_curation():
    """The committed curation (coordinates/), loaded once: tests read it, never change it."""
    from mnsmeta.curation.records import load_curation

    return load_curation(REPO / "coordinates")


@pytest.fixture
def make_coordinates(tmp_path):
    """Build a coordinates/ folder from records lines and manual-foci lines."""

    def build(records: list[str], manual: list[str] | None = None) -> Path:
        root = tmp_path / "coordinates"
        (root / "records").mkdir(parents=True, exist_ok=True)
        (root / "manual").mkdir(exist_ok=True)
        (root / "records" / "test.tsv").write_text(RECORD_HEADER + "".join(records))
        if manual is not None:
            (root / "manual" / "typed.tsv").write_text(MANUAL_HEADER + "".join(manual))
        return root

    return build


# -- a real browser, for the report pages ----------------------------------------------

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by playwright; skipped only when either is absent."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or `make browser`)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# -- synthetic Sleuth files ------------------------------------------------------------

# Two places where most synthetic experiments report a peak, so that ALE converges there.
CENTRES = [(-22.0, -4.0, -18.0), (44.0, 16.0, 4.0)]


def sleuth_text(n_experiments: int, seed: int, space: str = "MNI", name: str = "Study") -> str:
    """A Sleuth file of ``n_experiments`` experiments, foci near CENTRES and scattered."""
    rng = np.random.default_rng(seed)
    blocks = [f"// Reference={space}"]
    for e in range(n_experiments):
        foci = [np.add(c, rng.normal(0, 3, 3)) for c in CENTRES if rng.random() < 0.7]
        foci += [rng.uniform([-50, -80, -20], [50, 40, 50]) for _ in range(rng.integers(2, 6))]
        lines = "\n".join("\t".join(f"{v:.0f}" for v in focus) for focus in foci)
        blocks.append(
            f"// {name} {e + 1}: task > baseline\n// Subjects={rng.integers(12, 40)}\n{lines}\n"
        )
    return "\n".join(blocks) + "\n"


# -- the field's real foci files, read where they are (never copied here) ----------------


def jale_example() -> Path:
    """JALE's example experiment table, in the installed jale wheel (found without importing
    jale, which the Makefile installs without its dependencies)."""
    from importlib.util import find_spec

    spec = find_spec("jale")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("jale is not installed (the Makefile installs jale==0.2.10)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder / "assets" / "examples" / "experiment_info.xlsx"


def lotter_csv() -> Path:
    """Lotter et al. 2023's foci table, from the mirror of published foci files."""
    mirror = Path(os.environ.get("MNSMETA_DATA_MIRROR") or "/nonexistent")
    path = mirror / "published" / "lotter2023" / "ale_coordinates.csv"
    if not path.is_file():
        pytest.skip("no mirror of the published foci files (MNSMETA_DATA_MIRROR)")
    return path


def synthetic_flow():
    """A study flow table in the format of ``mnsmeta studies --flow`` (``flow.csv``), with
    made-up counts that add up as the real ones do and differ between boxes."""
    import pandas as pd

    from mnsmeta.curation.records import REASONS
    from mnsmeta.data.hygiene import RULES

    excluded = {
        "structural": (5, 7, 0),
        "resting_state": (4, 0, 0),
        "subclinical": (6, 0, 0),
        "review": (3, 0, 0),
        "dti": (0, 1, 0),
        "no_control_group": (0, 4, 0),
        "duplicate_sample": (0, 2, 0),
        "off_topic": (0, 0, 9),
        "clinical_sample": (0, 0, 11),
        "other_population": (0, 0, 8),
    }
    rows = {
        "identified: Neurosynth titles": (20, 31, 110),
        "identified: NeuroQuery titles": (25, 33, 84),
        "identified: NeuroQuery abstract/keyword terms": (18, 27, 0),
        "candidates after merging by PMID": (40, 52, 137),
        "added by hand (not candidates)": (2, 0, 1),
        "screened (curation record)": (42, 49, 138),
        "candidates not yet curated": (0, 3, 0),
        "flagged for a curation decision": (1, 5, 13),
        **{f"excluded: {reason}": excluded.get(reason, (0, 0, 0)) for reason in REASONS},
        "excluded (total)": (18, 14, 28),
        "awaiting classification": (2, 6, 21),
        "included (eligible)": (22, 29, 89),
        "included with a sample size read in a source": (19, 24, 30),
        "sensitivity only: tables mix other groups, connectivity, treatment or ages": (5, 7, 12),
        "sensitivity only: ROI/SVC peaks only": (1, 3, 4),
        "included: primary analysis (studies)": (16, 19, 73),
        "primary studies sharing a sample with another (pooled)": (2, 4, 10),
        "included: primary analysis (experiments, one per sample)": (15, 17, 68),
        "foci of the primary studies (as stored)": (400, 700, 3000),
        **{f"foci removed: {rule}": (1, 2, 3) for rule in RULES},
        "foci analysed": tuple(n - len(RULES) * k for n, k in ((400, 1), (700, 2), (3000, 3))),
    }
    table = pd.DataFrame(rows, index=["SAD", "BPD", "MNS"]).T
    table.index.name = "stage"
    return table
