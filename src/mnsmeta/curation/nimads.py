"""NIMADS studysets (NeuroStore's and NiMARE's JSON), read through NiMARE's own ``Studyset``.

Each analysis with points is one experiment, named ``study_id: analysis`` (the study's name
as an id, :func:`~mnsmeta.curation.foci_files.study_id_from_name`); two analyses of one study
with the same name are numbered. N is the first of the analysis's ``metadata.sample_sizes``
(or ``metadata.sample_size``); a contrast's kind is ``metadata.kind`` when it is one of the
curation's kinds. An analysis without points is skipped with a warning, as an empty Sleuth
block is.
"""

from __future__ import annotations

from pathlib import Path

from mnsmeta.curation.contrasts import KINDS, UNKNOWN
from mnsmeta.curation.foci_files import (
    FociExperiment,
    check_experiments,
    parse_coordinate,
    study_id_from_name,
)
from mnsmeta.curation.records import SPACES
from mnsmeta.curation.tsv import positive_whole_number
from mnsmeta.errors import Problem

#: Where a NIMADS analysis's N is read (``experiments.csv``'s ``sample_size_rule``).
SAMPLE_SIZE_RULE = "sample_sizes"


def read_nimads(
    path: Path, problems: list[Problem], drop_outside: bool | str = False
) -> list[FociExperiment]:
    """Read a NIMADS studyset into experiments, appending every problem to ``problems``.

    Parameters
    ----------
    path : Path
        The studyset (``.json``).
    problems : list of Problem
        Where problems are recorded (a studyset has no useful line numbers: each names its
        study and analysis).
    drop_outside : bool or "box"
        As for :func:`~mnsmeta.curation.foci_files.read_foci_file`.

    Returns
    -------
    list of FociExperiment
        One per analysis with points, in file order.
    """
    path_s = str(path)
    try:
        document = _studyset(path)
    except Exception as error:  # NiMARE raises several types for malformed documents
        problems.append(
            Problem(
                path_s,
                None,
                f"not a NIMADS studyset that NiMARE can read ({type(error).__name__}: {error})",
                "export it from NeuroStore or NiMARE (Studyset.to_nimads)",
            )
        )
        return []
    experiments = []
    for number, entry in enumerate(document.get("studies") or [], start=1):
        name = str(entry.get("name") or entry.get("id") or f"study {number}")
        study_id = study_id_from_name(name)
        labels: set[str] = set()
        for analysis in entry.get("analyses") or []:
            label = str(analysis.get("name") or analysis.get("id") or "1")
            # Two analyses of one study may carry the same name (two tasks): keep both.
            numbered, count = label, 2
            while numbered in labels:
                numbered, count = f"{label} ({count})", count + 1
            labels.add(numbered)
            experiment = _experiment(analysis, name, study_id, numbered, path_s, problems)
            if experiment is not None:
                experiments.append(experiment)
    return check_experiments(experiments, path_s, problems, drop_outside)


def _experiment(analysis, name, study_id, label, path, problems) -> FociExperiment | None:
    full = f"{study_id}: {label}"
    metadata = analysis.get("metadata") or {}
    points = analysis.get("points") or []
    if not points:
        problems.append(
            Problem(
                path,
                None,
                f"analysis {full!r} has no points",
                "skipped; give its coordinates, or delete it",
                severity="warning",
            )
        )
        return None
    spaces = {_space(point.get("space")) for point in points}
    unknown = sorted(s for s in spaces if s not in SPACES)
    if unknown:
        problems.append(
            Problem(
                path,
                None,
                f"analysis {label!r}: unknown space {unknown[0]!r}",
                "give MNI or TAL (Talairach)",
            )
        )
        return None
    if len(spaces) > 1:
        problems.append(
            Problem(
                path,
                None,
                f"analysis {label!r} of {name!r} mixes spaces {sorted(spaces)}",
                "give each analysis's points in one space",
            )
        )
        return None
    sizes = metadata.get("sample_sizes") or [metadata.get("sample_size")]
    sizes = [positive_whole_number(str(s)) for s in sizes if s is not None]
    sizes = [s for s in sizes if s is not None]
    if not sizes:
        problems.append(
            Problem(
                path,
                None,
                f"analysis {full!r} has no sample size",
                "give metadata.sample_sizes (the number of participants)",
            )
        )
    foci = [_coordinates(point.get("coordinates"), full, path, problems) for point in points]
    if None in foci:
        return None
    unique = list(dict.fromkeys(foci))
    if len(unique) < len(foci):
        problems.append(
            Problem(
                path,
                None,
                f"{len(foci) - len(unique)} focus(es) repeated within {full!r}",
                "each counts once (a repeated focus adds a random focus to the null, nothing "
                "to the map); delete the repeats to silence this",
                severity="warning",
            )
        )
    kind = metadata.get("kind")
    return FociExperiment(
        full,
        sizes[0] if sizes else None,
        spaces.pop(),
        unique,
        None,
        path,
        study=name,
        contrast=label,
        kind=kind if kind in KINDS and kind != UNKNOWN else "",
        repeated=len(foci) - len(unique),
        sample_size_rule=SAMPLE_SIZE_RULE,
    )


def _coordinates(values, label, path, problems) -> tuple[float, float, float] | None:
    numbers = [
        parse_coordinate(v, axis, path, None, problems)
        for axis, v in zip("xyz", values if isinstance(values, list | tuple) else [], strict=False)
    ]
    if len(numbers) == 3 and None not in numbers:
        return tuple(numbers)
    if len(numbers) != 3:
        problems.append(
            Problem(
                path,
                None,
                f"a point of analysis {label!r} has coordinates {values!r}",
                "give each point three coordinates [x, y, z] in mm",
            )
        )
    return None


def _space(value) -> str:
    text = str(value or "MNI").upper()
    return "TAL" if text.startswith("TAL") else text


def _studyset(path: Path) -> dict:
    """A NIMADS studyset file as NiMARE reads it (its own ``Studyset``, then ``to_dict``)."""
    import warnings

    from nimare.nimads import Studyset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Studyset(str(path)).to_dict()
