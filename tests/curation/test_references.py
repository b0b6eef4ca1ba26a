"""Published reference sets: read as their authors shared them, selected by written label rules."""

from __future__ import annotations

import pandas as pd
import pytest

from mnsmeta.curation import references
from mnsmeta.errors import MnsmetaInputError


@pytest.fixture(scope="module")
def laird():
    return references.read_reference("laird2015")


def test_laird_is_read_whole_with_its_outside_focus_dropped_and_named(laird):
    experiments, warnings = laird
    assert len(experiments.experiments) == 386  # as the shared README counts them
    assert experiments.experiments["sample_size"].notna().all()
    dropped = [w for w in warnings if "outside the MNI152 bounding box" in w.message]
    assert [w.line for w in dropped] == [717]  # the README's known quirk
    assert "dropped" in dropped[0].fix
    # Talairach file: foci were converted to MNI (the box check is on MNI coordinates)
    assert experiments.experiments["reported_space"].eq("TAL").all()


def test_every_published_set_reads_despite_its_quirks():
    counts = {}
    for name in ("morawetz2020", "pintoslobo2022", "riedel2018"):
        experiments, _ = references.read_reference(name)
        counts[name] = len(experiments.experiments)
        assert experiments.experiments.index.is_unique
    # Pintos Lobo: CRLF, tab-padded, two files (MNI and Talairach); Riedel: five files.
    assert counts == {"morawetz2020": 385, "pintoslobo2022": 646 + 218, "riedel2018": 1747}


def test_an_unknown_set_is_refused_with_the_known_names():
    with pytest.raises(MnsmetaInputError, match="laird2015, morawetz2020"):
        references.read_reference("laird2016")


def test_label_rules_read_the_left_hand_side_and_skip_correlations():
    table = pd.DataFrame(
        {
            "contrasts": [
                "Kesler-West, 2001: Angry - Neutral",
                "Leveroni, 2000: Neutral Faces > Fearful Faces",
                "Haxby, 1999: Faces > Houses",
                "X, 2004: Fear Learning > Neutral Learning, Positive Correlation with Anxiety",
            ]
        },
        index=["a", "b", "c", "d"],
    )
    named = references.label_paradigms(table, "laird2015")
    assert named["emotional_faces"].tolist() == [True, False, False, False]
    coded = pd.DataFrame(
        {
            "contrasts": [
                "Phan et al 2005: task>emotion iaps visual reapp decr explicit mixed picture neg reg",
                "Phan et al 2005: emotion>baseline iaps visual maintain explicit mixed picture "
                "neg react",
            ]
        }
    )
    named = references.label_paradigms(coded, "morawetz2020")
    assert named["emotion_regulation"].tolist() == [True, False]
    assert named["emotional_scenes"].tolist() == [False, True]


def test_a_matched_selection_has_the_disorders_paradigm_shares_one_contrast_per_study():
    paradigms = pd.Series(["emotional_faces"] * 4 + ["theory_of_mind"] * 2 + ["other"])
    names = ["laird2015", "pintoslobo2022"]
    experiments, selection, balance = references.select_matched(names, paradigms, "ref", 0)
    by_paradigm = selection["paradigm"].value_counts()
    ratio = by_paradigm["emotional_faces"] // 4
    assert ratio >= 1 and by_paradigm["theory_of_mind"] == 2 * ratio
    assert selection["study"].is_unique  # one contrast per study
    assert set(experiments.experiments.index) == set(selection["experiment_id"])
    row = balance.set_index("paradigm")
    assert row.loc["other", "selected"] == 0  # no rule: uncovered, and the table says so
    assert row.loc["emotional_faces", "covered_share"] == pytest.approx(4 / 6)
    assert row.loc["emotional_faces", "selected_share"] == pytest.approx(4 / 6)
    # every selected label matches its paradigm's written rule
    for label, paradigm, name in selection[["label", "paradigm", "set"]].itertuples(index=False):
        assert references.label_paradigms(pd.DataFrame({"contrasts": [label]}), name)[paradigm][0]
    again = references.select_matched(names, paradigms, "ref", 0)[1]
    pd.testing.assert_frame_equal(again, selection)  # same seed, same selection


def test_mnsmeta_ale_takes_a_published_set_by_name_and_a_file_past_outside_foci(tmp_path):
    from mnsmeta.workflows.own_foci import read_input

    own = read_input("laird2015", tmp_path)
    assert own.name == "laird2015" and len(own.experiments.experiments) == 386
    sleuth = tmp_path / "own.txt"
    sleuth.write_text("// Reference=MNI\n// A: x\n// Subjects=10\n1 2 3\n-5.7 155.1 -8.4\n")
    with pytest.raises(MnsmetaInputError, match="1 error"):
        read_input(str(sleuth), tmp_path)
    kept = read_input(str(sleuth), tmp_path, drop_outside=True)
    assert len(kept.experiments.foci) == 1
    assert any(w.line == 5 and "dropped" in w.fix for w in kept.warnings)


def test_the_expert_mns_set_is_pintos_lobos_action_contrasts_one_per_study():
    """The written label rule takes watching or copying hand and body actions, never a
    participant being imitated, faces or touch; a study with several such contrasts gives one
    (Hanawa 2016: three observation and four imitation contrasts of one sample)."""
    experiments, selection = references.select_paradigms(
        ["pintoslobo2022"], ("action_observation", "imitation", "observation_execution"),
        "MNS_expert", seed=0,
    )  # fmt: skip
    studies = sorted(selection["study"].str.removeprefix("pintoslobo2022: "))
    assert studies == [
        "Catmur et al., 2008", "Hanawa et al., 2016", "Mazzola et al., 2016",
        "Montgomery et al., 2008", "Sokolov et al., 2012", "Sperduti et al., 2014",
        "Wang et al., 2011",
    ]  # fmt: skip
    assert not selection["label"].str.contains("being imitated|Faces > Grasping").any()
    assert len(experiments.experiments) == 7
    assert experiments.experiments["sample_size"].min() >= 12  # N from the published set
    with pytest.raises(MnsmetaInputError, match="no contrast label of laird2015 matches"):
        references.select_paradigms(["laird2015"], ("imitation",), "x", seed=0)
