"""The study tables of a results folder: flow, excluded studies, characteristics, paradigms,
and each group's PRISMA 2020 flow diagram."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mnsmeta.curation.characteristics import paradigm_table, study_characteristics
from mnsmeta.curation.flow import excluded_studies, study_flow
from mnsmeta.curation.groups import GROUPS
from mnsmeta.curation.records import Curation
from mnsmeta.workflows.flow_diagram import plot_flow
from mnsmeta.workflows.results import ResultsFolder, write_csv


def write_study_tables(
    curation: Curation, results: ResultsFolder, groups=tuple(GROUPS), flow: pd.DataFrame = None
) -> list[Path]:
    """Write the flow, the excluded studies, the characteristics and the paradigm table, and
    each group's flow diagram (PNG and SVG).

    ``flow`` is the flow table when the caller has it already (:func:`study_flow`).
    """
    flow = study_flow(curation, groups) if flow is None else flow
    characteristics = study_characteristics(curation, groups)
    written = [
        write_csv(flow, results.flow, index=True),
        write_csv(excluded_studies(curation, groups), results.excluded),
        write_csv(characteristics, results.characteristics),
        write_csv(paradigm_table(characteristics), results.paradigms, index=True),
    ]
    for group in flow.columns:
        png, svg = results.flow_diagram(group), results.flow_diagram(group, ".svg")
        plot_flow(flow, group, png, svg)
        written += [png, svg]
    return written
