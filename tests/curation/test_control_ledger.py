"""The control ledger: a reader's decision per chosen control, with line-numbered problems."""

from __future__ import annotations

from mnsmeta.curation.control_ledger import read_control_ledger

HEADER = "group\tstudy_id\tparadigm\tcontrol_pmid\tdecision\treason\tevidence\n"


def test_rows_are_read_with_their_decisions(tmp_path):
    path = tmp_path / "controls.tsv"
    path.write_text(
        "# a comment\n" + HEADER
        + "SAD\t15601601\temotional_faces\t22425719\tinclude\tattention to faces\ttitle\n"
        + "BPD\t16837057\tmemory\t28352220\texclude\tnot memory retrieval\ttitle\n"
    )  # fmt: skip
    problems = []
    rows = read_control_ledger(path, problems)
    assert problems == []
    assert [(r.control_pmid, r.decision) for r in rows] == [(22425719, "include"),
                                                            (28352220, "exclude")]  # fmt: skip
    assert rows[1].line == 4


def test_a_bad_pmid_decision_or_missing_reason_is_named_with_its_line(tmp_path):
    path = tmp_path / "controls.tsv"
    path.write_text(
        HEADER
        + "SAD\t1\temotional_faces\tPMID22\tinclude\tfaces\ttitle\n"
        + "SAD\t1\temotional_faces\t22\tmaybe\tfaces\ttitle\n"
        + "SAD\t1\temotional_faces\t23\texclude\t\ttitle\n"
    )  # fmt: skip
    problems = []
    assert read_control_ledger(path, problems) == []
    assert [p.line for p in problems] == [2, 3, 4]
    assert "PMID22" in problems[0].message and "maybe" in problems[1].message
    assert "reason" in problems[2].message
