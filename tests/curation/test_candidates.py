"""The selection rule finds the same candidates every time, without substring traps."""

from __future__ import annotations

import re

import pytest

from mnsmeta.curation.candidates import RULES, find_candidates, flags_for


@pytest.mark.parametrize(
    ("title", "group", "matches"),
    [
        ("Neural correlates of imitation in healthy adults", "MNS", True),
        ("Imitative behaviour and the premotor cortex", "MNS", True),
        ("Limitations of the subtraction method", "MNS", False),
        ("Observing hand actions activates premotor cortex", "MNS", True),
        ("The mirror neuron system and empathy", "MNS", True),
        ("Mirror reading in dyslexia", "MNS", False),
        ("Amygdala responses in generalized social phobia", "SAD", True),
        ("Social anxiety disorder and self-focused attention", "SAD", True),
        ("Antisocial behaviour in adolescents", "SAD", False),
        ("Emotion regulation in borderline personality disorder", "BPD", True),
        ("Women with BPD and self-injury", "BPD", True),
        ("Borderline significance of a cingulate effect", "BPD", False),
    ],
)
def test_title_patterns_use_word_boundaries(title, group, matches):
    assert bool(re.search(RULES[group].title_pattern, title, re.IGNORECASE)) is matches


@pytest.mark.parametrize(
    ("group", "ns_titles", "nq_titles", "nq_terms", "total"),
    [("SAD", 55, 69, 65, 91), ("BPD", 43, 43, 31, 62), ("MNS", 125, 91, 0, 155)],
)
def test_candidate_counts_per_database(group, ns_titles, nq_titles, nq_terms, total):
    found = find_candidates(group)
    assert int(found["title_neurosynth"].sum()) == ns_titles
    assert int(found["title_neuroquery"].sum()) == nq_titles
    assert int(found["terms_neuroquery"].sum()) == nq_terms
    assert len(found) == total


def test_implausible_extractions_are_flagged():
    flags = flags_for([15091346, 16997576, 19717138])
    assert flags[15091346] == "many_foci=516;outside_brain=2"
    assert flags[16997576] == "many_foci=116"
    assert 19717138 not in flags
