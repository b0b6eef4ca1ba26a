"""The results contract: every name under ``results/``, and the only code that reads or writes it.

A results folder holds one folder per analysis (:class:`AnalysisFolder`: its NIfTI maps,
named as NiMARE's ``MetaResult`` names them, its tables and figures) and the products of the
later stages: the MNS masks, the overlap tests, the robustness checks (whose sensitivity
reruns are results folders of their own), the claims and the report. Stages hand each other
objects (:class:`AnalysisResult`); this module turns them into files and back.

Every file is written through :func:`mnsmeta.filesystem.atomic` (a temporary name beside
it, renamed when complete, removed on error), and every folder that a command replaces through
:meth:`ResultsFolder.staged`, so an interrupted command leaves the previous results whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mnsmeta.curation.analyses import Analysis
from mnsmeta.curation.experiments import FOCI_COLUMNS, ExperimentSet
from mnsmeta.errors import MnsmetaInputError
from mnsmeta.filesystem import atomic
from mnsmeta.meta_analysis.analysis_result import AnalysisResult

#: Tables are written with this many significant digits (the README's figures come from them).
FLOAT_FORMAT = "%.6g"
ROBUSTNESS_FLOAT_FORMAT = "%.4g"


def write_csv(table: pd.DataFrame, path: Path, **options) -> Path:
    """Write a table as CSV, atomically (pandas options: ``index``, ``float_format``...)."""
    options.setdefault("index", False)
    with atomic(path) as temporary:
        table.to_csv(temporary, **options)
    return Path(path)


def write_json(path: Path, content: dict, sort_keys: bool = True) -> Path:
    """Write JSON (keys sorted unless ``sort_keys`` is False), atomically."""
    with atomic(path) as temporary:
        text = json.dumps(content, indent=2, sort_keys=sort_keys, default=str)
        temporary.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text, atomically."""
    with atomic(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def save_map(data: np.ndarray, path: Path, dtype=np.float32) -> Path:
    """Write a 3D array on the MNI152 2 mm grid as NIfTI (same data, same bytes)."""
    import nibabel as nib

    from mnsmeta.data.space import brain_mask_img

    template = brain_mask_img()
    image = nib.Nifti1Image(np.asarray(data, dtype=dtype), template.affine)
    image.header.set_xyzt_units("mm")
    image.header.set_qform(template.affine, code=4)  # MNI
    image.header.set_sform(template.affine, code=4)
    with atomic(path) as temporary:
        image.to_filename(temporary)
    return Path(path)


def read_map(path: Path, dtype=None) -> np.ndarray:
    """A NIfTI map's data as stored (``dtype`` converts)."""
    import nibabel as nib

    data = np.asarray(nib.load(path).dataobj)
    return data if dtype is None else data.astype(dtype)


def _read_csv(path: Path, **options) -> pd.DataFrame | None:
    return pd.read_csv(path, **options) if Path(path).is_file() else None


def _read_json(path: Path) -> dict | None:
    return json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else None


@dataclass(frozen=True)
class ThresholdedMap:
    """A thresholded z map and its twins: binary mask, cluster labels, two figures."""

    z: Path
    mask: Path
    labels: Path
    glass: Path
    slices: Path


@dataclass(frozen=True)
class AnalysisFolder:
    """One analysis's folder: the names of its maps, tables and figures.

    Parameters
    ----------
    path : Path
        The folder (``results/<analysis>``, or its staging folder while being written).
    analysis : Analysis
        The analysis whose files these are (its kind decides the thresholded maps).
    """

    path: Path
    analysis: Analysis

    CLUSTER_THRESHOLDED = "z_level-cluster_corr-FWE_thresh"
    VOXEL_THRESHOLDED = "z_level-voxel_corr-FWE_thresh"
    CONJUNCTION_THRESHOLDED = "z_desc-conjunction_thresh"

    # -- names ---------------------------------------------------------------------------

    def map(self, name: str) -> Path:
        """A NiMARE map by its ``MetaResult`` name (``stat``, ``z``, ``p``, ...)."""
        return self.path / f"{name}.nii.gz"

    def subtraction_map(self, name: str) -> Path:
        """A subtraction map, NiMARE's ``group1``/``Group2`` replaced by the inputs' names."""
        first, second = self.analysis.inputs
        named = name.replace("group1", first).replace("Group1", first)
        return self.map(named.replace("group2", second).replace("Group2", second))

    def directions(self) -> list[tuple[str, str]]:
        """(minuend, subtrahend) of each thresholded map of a subtraction; else ``[]``."""
        if not self.analysis.is_subtraction:
            return []
        first, second = self.analysis.inputs
        return [(first, second), (second, first)]

    def thresholded(self, direction: tuple[str, str] | None = None) -> ThresholdedMap:
        """The thresholded map whose clusters ``clusters.csv`` describes.

        ALE: cluster-level FWE; conjunction: the minimum statistic; subtraction: one map per
        ``direction`` (minuend, subtrahend).
        """
        if self.analysis.is_subtraction:
            if direction is None:
                raise ValueError("a subtraction has one thresholded map per direction")
            stem = f"z_desc-{direction[0]}gt{direction[1]}_thresh"
        elif self.analysis.is_conjunction:
            stem = self.CONJUNCTION_THRESHOLDED
        else:
            stem = self.CLUSTER_THRESHOLDED
        return self._thresholded(stem)

    @property
    def voxel_thresholded(self) -> Path:
        """The voxel-level FWE thresholded z map of an ALE."""
        return self.map(self.VOXEL_THRESHOLDED)

    def _thresholded(self, stem: str) -> ThresholdedMap:
        return ThresholdedMap(
            z=self.map(stem),
            mask=self.map(stem.replace("z_", "mask_", 1)),
            labels=self.map(stem.replace("z_", "labels_", 1)),
            glass=self.path / f"{stem}_glass.png",
            slices=self.path / f"{stem}_slices.png",
        )

    @property
    def clusters(self) -> Path:
        return self.path / "clusters.csv"

    @property
    def peaks(self) -> Path:
        """Each cluster's local maxima (peak and sub-peaks 8 mm apart), beside ``clusters``."""
        return self.path / "peaks.csv"

    @property
    def experiments(self) -> Path:
        return self.path / "experiments.csv"

    @property
    def foci(self) -> Path:
        """The foci the analysis used: the internal hand-off (typed table)."""
        return self.path / "foci.tsv"

    @property
    def sleuth(self) -> Path:
        """The same foci as Sleuth text, to rerun the map in GingerALE or NiMARE."""
        return self.path / "foci.txt"

    @property
    def tfce(self) -> Path:
        """TFCE of the z map (JALE's enhancement; ``--tfce``)."""
        return self.path / "stat_desc-tfce.nii.gz"

    @property
    def tfce_logp(self) -> Path:
        """-log10 of each voxel's TFCE FWE p (largest TFCE of each Monte Carlo map)."""
        return self.path / "logp_desc-tfce_level-voxel_corr-FWE_method-montecarlo.nii.gz"

    @property
    def tfce_thresholded(self) -> Path:
        """The z map where TFCE is FWE-significant."""
        return self.path / "z_desc-tfce_level-voxel_corr-FWE_thresh.nii.gz"

    @property
    def controls(self) -> Path:
        """A control set's matches: each disorder study, its control and their similarity."""
        return self.path / "controls.csv"

    @property
    def balance(self) -> Path:
        """A control set's balance: per task term, its share in each set."""
        return self.path / "balance.csv"

    @property
    def reference_selection(self) -> Path:
        """A published reference's selection: each experiment, its set, label and paradigm."""
        return self.path / "reference_selection.csv"

    @property
    def paradigm_balance(self) -> Path:
        """A matched reference's balance: per paradigm, its share in each set."""
        return self.path / "paradigm_balance.csv"

    @property
    def provenance(self) -> Path:
        return self.path / "provenance.json"

    @property
    def note(self) -> Path:
        return self.path / "NOTE.txt"

    def figures(self) -> list[Path]:
        """The PNG figures present: glass brains first, then slices."""
        return sorted(self.path.glob("*_glass.png")) + sorted(self.path.glob("*_slices.png"))

    # -- readers -------------------------------------------------------------------------

    def read_clusters(self) -> pd.DataFrame:
        if not self.clusters.is_file():
            raise MnsmetaInputError(f"{self.clusters}: missing: run `mnsmeta run` first")
        return pd.read_csv(self.clusters, dtype={"experiments": str})

    def read_peaks(self) -> pd.DataFrame:
        """The peak table (one row per local maximum; ``cluster`` as in ``clusters.csv``)."""
        if not self.peaks.is_file():
            raise MnsmetaInputError(f"{self.peaks}: missing: rerun `mnsmeta run`")
        return pd.read_csv(self.peaks)

    def read_labels(self, direction: tuple[str, str] | None = None) -> np.ndarray:
        """Cluster numbers per voxel (0 outside), as in ``clusters.csv``."""
        path = self.thresholded(direction).labels
        if not path.is_file():
            raise MnsmetaInputError(f"{path}: missing: run `mnsmeta run` first")
        return read_map(path, int)

    def read_experiments(self) -> ExperimentSet | None:
        """The analysis's experiments and foci (None for subtraction and conjunction)."""
        if not self.experiments.is_file():
            return None
        if not self.foci.is_file():
            raise MnsmetaInputError(f"{self.foci}: missing: rerun `mnsmeta run`")
        experiments = pd.read_csv(self.experiments, dtype={"experiment_id": str})
        # Round-trip parsing: the foci read back are the very floats that were written.
        foci = pd.read_csv(
            self.foci, sep="\t", dtype={"experiment_id": str}, float_precision="round_trip"
        )
        if foci.empty:
            raise MnsmetaInputError(f"{self.foci}: no foci: rerun `mnsmeta run`")
        return ExperimentSet(self.analysis.name, experiments.set_index("experiment_id"), foci)

    def read_provenance(self) -> dict | None:
        return _read_json(self.provenance)

    def cache_key(self) -> str | None:
        """The cache key the analysis was computed under (None: written before keys)."""
        return (self.read_provenance() or {}).get("cache_key")

    # -- writers -------------------------------------------------------------------------

    def write_experiments(self, experiments: ExperimentSet) -> None:
        """``experiments.csv``, ``foci.tsv`` and the Sleuth export ``foci.txt``."""
        from mnsmeta.curation.sleuth import write_sleuth

        write_csv(experiments.experiments, self.experiments, index=True)
        write_csv(experiments.foci[FOCI_COLUMNS], self.foci, sep="\t")
        with atomic(self.sleuth) as temporary:
            write_sleuth(temporary, experiments.to_sleuth())

    def write_clusters(self, table: pd.DataFrame, peaks: pd.DataFrame | None = None) -> None:
        """The cluster table and, beside it, its peak table (every analysis of a run has
        one; a result saved from elsewhere may not)."""
        write_csv(table, self.clusters, float_format=FLOAT_FORMAT)
        if peaks is not None:
            write_csv(peaks, self.peaks, float_format=FLOAT_FORMAT)

    def write_reference(self, selection: pd.DataFrame, balance: pd.DataFrame | None) -> None:
        """A reference's experiments (``reference_selection.csv``) and, for a matched
        selection, its paradigm balance (``paradigm_balance.csv``)."""
        write_csv(selection, self.reference_selection, float_format=FLOAT_FORMAT)
        if balance is not None:
            write_csv(balance, self.paradigm_balance, float_format=FLOAT_FORMAT)

    def write_controls(self, matched) -> None:
        """A control set's matches (``controls.csv``) and task-term balance (``balance.csv``)."""
        write_csv(matched.matches, self.controls, float_format=FLOAT_FORMAT)
        write_csv(matched.balance, self.balance, float_format=FLOAT_FORMAT)


@dataclass(frozen=True)
class OverlapFolder:
    """``results/overlap/``: the overlap tables, their provenance and figures."""

    path: Path

    @property
    def overlap(self) -> Path:
        return self.path / "overlap.csv"

    @property
    def clusters(self) -> Path:
        return self.path / "overlap_clusters.csv"

    @property
    def provenance(self) -> Path:
        return self.path / "provenance.json"

    def read_provenance(self) -> dict | None:
        return _read_json(self.provenance)

    def figure(self, analysis_name: str) -> Path:
        return self.path / f"{analysis_name}_masks.png"

    @property
    def cache(self) -> Path:
        """Each tested analysis's rows under its cache key (:mod:`~mnsmeta.workflows.cache`)."""
        return self.path / "cache.json"

    def read_cache(self) -> dict:
        return _read_json(self.cache) or {}

    def figures(self) -> list[Path]:
        return sorted(self.path.glob("*_masks.png"))


@dataclass(frozen=True)
class MasksFolder:
    """``results/masks/``: each MNS mask as NIfTI with a JSON sidecar."""

    path: Path

    def image(self, name: str) -> Path:
        return self.path / f"mns_{name}.nii.gz"

    def sidecar(self, name: str) -> Path:
        return self.path / f"mns_{name}.json"

    def sidecars(self) -> list[Path]:
        return sorted(self.path.glob("mns_*.json"))

    @property
    def agreement(self) -> Path:
        """How far the masks agree (Dice, landmark coverage)."""
        return self.path / "agreement.csv"

    @property
    def figure(self) -> Path:
        return self.path / "masks.png"


@dataclass(frozen=True)
class _StageTables:
    """A later stage's folder: named csv tables and a provenance file."""

    path: Path

    def table(self, name: str) -> Path:
        """One of the stage's ``TABLES``."""
        return self.path / f"{name}.csv"

    def read_table(self, name: str) -> pd.DataFrame | None:
        """The table (empty if written empty), or None before the stage has run."""
        try:
            return _read_csv(self.table(name))
        except pd.errors.EmptyDataError:
            return pd.DataFrame()

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        write_csv(table, self.table(name), float_format=ROBUSTNESS_FLOAT_FORMAT)

    @property
    def provenance(self) -> Path:
        return self.path / "provenance.json"

    def read_provenance(self) -> dict | None:
        return _read_json(self.provenance)

    @property
    def cache(self) -> Path:
        """Each checked analysis's (or subtraction's) tables under its cache key."""
        return self.path / "cache.json"

    def read_cache(self) -> dict:
        return _read_json(self.cache) or {}


@dataclass(frozen=True)
class RobustnessFolder(_StageTables):
    """``results/robustness/``: the robustness tables (and ``sensitivity``) and the
    sensitivity reruns."""

    TABLES = (
        "contributions",
        "jackknife",
        "jackknife_subsets",
        "failsafe",
        "failsafe_levels",
        "clusters",
    )

    def sensitivity_variant(self, variant: str) -> ResultsFolder:
        """The results folder of one sensitivity variant's reruns."""
        return ResultsFolder(self.path / "sensitivity" / variant)

    @property
    def sensitivity_reruns(self) -> Path:
        """The folder of every variant's reruns."""
        return self.path / "sensitivity"


@dataclass(frozen=True)
class SpecificityFolder(_StageTables):
    """``results/specificity/``: each subtraction's differences in the claim regions, the
    power curves of its region-wise tests and its MNS overlap against the other set."""

    TABLES = ("differences", "power", "overlap")


@dataclass(frozen=True)
class ResultsFolder:
    """A results folder (``results/`` by default): the contract of every stage's outputs.

    Parameters
    ----------
    path : Path
        The folder.
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    # -- names ---------------------------------------------------------------------------

    def analysis(self, analysis: Analysis) -> AnalysisFolder:
        return AnalysisFolder(self.path / analysis.name, analysis)

    @property
    def summary(self) -> Path:
        return self.path / "summary.csv"

    @property
    def provenance(self) -> Path:
        return self.path / "provenance.json"

    @property
    def boilerplate(self) -> Path:
        """The methods paragraph with its references (as NiMARE writes one)."""
        return self.path / "boilerplate.txt"

    @property
    def dataset_description(self) -> Path:
        """BIDS-Derivatives ``dataset_description.json``."""
        return self.path / "dataset_description.json"

    @property
    def flow(self) -> Path:
        return self.path / "flow.csv"

    def flow_diagram(self, group: str, suffix: str = ".png") -> Path:
        """A group's PRISMA 2020 flow diagram (beside the flow): ``flow_SAD.png``, or
        ``flow_SAD.svg`` with ``suffix=".svg"``."""
        if suffix not in (".png", ".svg"):
            raise ValueError(f"a flow diagram is .png or .svg, not {suffix!r}")
        return self.path / f"flow_{group}{suffix}"

    @property
    def excluded(self) -> Path:
        """The excluded studies of every group, with their reasons (beside the flow)."""
        return self.path / "excluded.csv"

    @property
    def characteristics(self) -> Path:
        """One row per included study: N, paradigm, tables, mix, coverage, space, kernel."""
        return self.path / "characteristics.csv"

    @property
    def paradigms(self) -> Path:
        """Included studies per paradigm and group, and how many probe the mirror system."""
        return self.path / "paradigms.csv"

    @property
    def ledger(self) -> Path:
        return self.path / "ledger.csv"

    @property
    def overlap_table(self) -> Path:
        """The top-level copy of the overlap table (the one the README points to)."""
        return self.path / "overlap.csv"

    @property
    def overlap(self) -> OverlapFolder:
        return OverlapFolder(self.path / "overlap")

    @property
    def masks(self) -> MasksFolder:
        return MasksFolder(self.path / "masks")

    @property
    def robustness(self) -> RobustnessFolder:
        return RobustnessFolder(self.path / "robustness")

    @property
    def specificity(self) -> SpecificityFolder:
        return SpecificityFolder(self.path / "specificity")

    @property
    def claims(self) -> Path:
        return self.path / "claims.json"

    @property
    def claims_variants(self) -> Path:
        """The verdict x variant matrix of ``mnsmeta claims``."""
        return self.path / "claims_variants.csv"

    @property
    def bench(self) -> Path:
        """The last ``make bench`` (written by ``benchmarks/bench.py``)."""
        return self.path / "bench.csv"

    @property
    def bench_scale(self) -> Path:
        """The last scaling curve of ``make bench`` (written by ``benchmarks/scale.py``)."""
        return self.path / "bench_scale.csv"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    # -- staging -------------------------------------------------------------------------

    @contextmanager
    def staged(self, folder):
        """Yield ``folder`` (an analysis, overlap, masks or robustness folder) rooted in a
        temporary folder, which replaces the real one only when the block succeeds."""
        final = Path(folder.path)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
        try:
            yield dataclasses.replace(folder, path=staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        previous = None
        if final.exists():
            previous = final.with_name(f".{final.name}.previous-{staging.name.rsplit('-', 1)[-1]}")
            final.rename(previous)
        staging.rename(final)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)

    @property
    def lock_file(self) -> Path:
        return self.path / ".mnsmeta.lock"

    @property
    def lock_holder(self) -> Path:
        return self.path / ".mnsmeta.lock.json"

    @contextmanager
    def locked(self, command: str, wait: bool = False):
        """Hold the folder's lock for the block: one writer at a time.

        The lock is the operating system's (``filelock``: ``flock``), so a process that dies,
        even by ``kill -9``, releases it: a stale lock never blocks. The holder's command,
        process id and start time are written beside it, for the message of a second run.

        Raises
        ------
        MnsmetaInputError
            If another command holds the lock and ``wait`` is False.
        """
        from filelock import FileLock, Timeout

        from mnsmeta.workflows.provenance import now

        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.lock_file)
        try:
            lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            try:
                holder = _read_json(self.lock_holder) or {}
            except ValueError:  # being written by the holder
                holder = {}
            raise MnsmetaInputError(
                f"{self.path}: in use by `{holder.get('command', 'another mnsmeta command')}` "
                f"(process {holder.get('pid', '?')}, since {holder.get('started', '?')}): wait "
                "for it to finish, or pass --wait to queue behind it"
            ) from None
        try:
            write_json(
                self.lock_holder, {"command": command, "pid": os.getpid(), "started": now()}
            )
            yield self
        finally:
            self.lock_holder.unlink(missing_ok=True)
            lock.release()

    def discard(self, folder) -> None:
        """Remove a folder of results that no longer hold (renamed away first, so that an
        interruption never leaves half of it in place)."""
        final = Path(folder.path)
        if not final.exists():
            return
        gone = final.with_name(f".{final.name}.discarded-{os.getpid()}")
        final.rename(gone)
        shutil.rmtree(gone, ignore_errors=True)

    # -- readers -------------------------------------------------------------------------

    def require(self) -> None:
        if not self.path.is_dir():
            raise MnsmetaInputError(
                f"{self.path}: no such folder: run `mnsmeta run` first or pass --output"
            )

    def read_summary(self) -> pd.DataFrame | None:
        return _read_csv(self.summary)

    def read_provenance(self) -> dict | None:
        return _read_json(self.provenance)

    def stale(self) -> list[str]:
        """Later stages computed before an analysis they used was rerun, one line each.

        Compares each analysis folder's finish time with the start of the overlap tests
        (which also use the MNS reference, through its mask) and of the robustness checks.
        """
        finished = {}
        for folder in sorted(p for p in self.path.iterdir() if p.is_dir()):
            provenance = _read_json(folder / "provenance.json") if folder.is_dir() else None
            if provenance and "analysis" in provenance and "finished" in provenance:
                finished[folder.name] = str(provenance["finished"])
        messages = []
        for stage, command, provenance, extra in (
            ("overlap tests", "mnsmeta overlap", _read_json(self.overlap.provenance), "MNS"),
            (
                "robustness checks",
                "mnsmeta robustness",
                _read_json(self.robustness.provenance),
                None,
            ),
            (
                "specificity tests",
                "mnsmeta specificity",
                _read_json(self.specificity.provenance),
                None,
            ),
        ):
            if not provenance or "started" not in provenance:
                continue
            used = [*provenance.get("analyses", []), *([extra] if extra else [])]
            newer = [n for n in used if finished.get(n, "") > str(provenance["started"])]
            if newer:
                messages.append(
                    f"the {stage} predate the rerun of {', '.join(newer)}: run `{command}`"
                )
        return messages

    def read_overlap(self) -> pd.DataFrame | None:
        return _read_csv(self.overlap_table)

    def read_overlap_clusters(self) -> pd.DataFrame | None:
        """Each cluster's voxels inside each mask (the overlap stage's cluster table)."""
        return _read_csv(self.overlap.clusters)

    def read_claims(self) -> dict | None:
        return _read_json(self.claims)

    def computed(self, analysis: Analysis) -> bool:
        """Whether the analysis has results here (one without data has none)."""
        return self.analysis(analysis).path.is_dir()

    def load(self, analysis: Analysis, with_experiments: bool = True) -> AnalysisResult:
        """Read one analysis's result back (what ``mnsmeta run`` handed on in memory)."""
        folder = self.analysis(analysis)
        if not folder.path.is_dir():
            raise MnsmetaInputError(
                f"{folder.path}: missing: run the analysis first (mnsmeta run)"
            )
        clusters = folder.read_clusters()
        experiments = folder.read_experiments() if with_experiments else None
        if analysis.is_subtraction:
            by_direction = {}
            for direction in folder.directions():
                if folder.thresholded(direction).labels.is_file():
                    by_direction[direction] = folder.read_labels(direction)
            return AnalysisResult(analysis, experiments, clusters, None, None, by_direction)
        thresholded = folder.thresholded().z
        return AnalysisResult(
            analysis,
            experiments,
            clusters,
            folder.read_labels(),
            read_map(thresholded, np.float32) if thresholded.is_file() else None,
        )

    def save(self, result: AnalysisResult) -> AnalysisFolder:
        """Write an analysis result made elsewhere (the inverse of :meth:`load`).

        Writes the cluster table, the labels (and, when given, the thresholded map and its
        mask) and the experiments; ``mnsmeta run`` writes the maps, figures and the peak
        table besides (its local maxima are the ALE map's, which a result does not hold).
        """
        folder = self.analysis(result.analysis)
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_clusters(result.clusters)
        if result.analysis.is_subtraction:
            for direction, labels in (result.labels_by_direction or {}).items():
                save_map(labels, folder.thresholded(direction).labels, np.int16)
        else:
            files = folder.thresholded()
            save_map(result.labels, files.labels, np.int16)
            if result.thresholded is not None:
                save_map(result.thresholded, files.z)
                save_map(result.labels > 0, files.mask, np.uint8)
        if result.experiments is not None:
            folder.write_experiments(result.experiments)
        return folder

    def read_masks(self) -> dict[str, tuple[np.ndarray, dict]]:
        """Each mask written by the overlap stage: name -> (bool array, sidecar)."""
        masks = {}
        for sidecar in self.masks.sidecars():
            name = sidecar.stem.removeprefix("mns_")
            masks[name] = (read_map(self.masks.image(name)) > 0, _read_json(sidecar))
        return masks
