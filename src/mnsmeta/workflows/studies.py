"""The study tables of a results folder: flow, excluded studies, characteristics, paradigms."""

from __future__ import annotations

from pathlib import Path

from mnsmeta.curation.characteristics import paradigm_table, study_characteristics
from mnsmeta.curation.flow import excluded_studies, study_flow
from mnsmeta.curation.records import Curation
from mnsmeta.workflows.results import ResultsFolder, write_csv


def write_study_tables(curation: Curation, results: ResultsFolder) -> list[Path]:
    """Write the flow, the excluded studies, the characteristics and the paradigm table."""
    characteristics = study_characteristics(curation)
    return [
        write_csv(study_flow(curation), results.flow, index=True),
        write_csv(excluded_studies(curation), results.excluded),
        write_csv(characteristics, results.characteristics),
        write_csv(paradigm_table(characteristics), results.paradigms, index=True),
    ]
