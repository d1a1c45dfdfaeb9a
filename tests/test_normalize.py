import pytest

from pipeline.core.errors import PieceError
from pipeline.data.normalize import add_midi_to_printed_scores
from pipeline.data.textscan import code_mask, find_blocks, iter_scores


def test_midi_only_score_removed_and_printed_score_gets_midi():
    src = r"""
\score { \new PianoStaff << { c'1 } { c1 } >> \layout { } }
\score { \unfoldRepeats { c'1 } \midi { } }
"""
    out, counts = add_midi_to_printed_scores(src)
    assert counts == {"printed_scores": 1, "midi_only_removed": 1}
    scores = list(iter_scores(find_blocks(out)))
    assert len(scores) == 1
    assert {c.keyword for c in scores[0].children} == {"layout", "midi"}
    assert "unfoldRepeats" not in out.split("removed")[1]


def test_score_without_layout_keeps_printing():
    out, _ = add_midi_to_printed_scores(r"\score { { c'1 } }")
    kinds = {c.keyword for c in next(iter_scores(find_blocks(out))).children}
    assert kinds == {"layout", "midi"}


def test_commented_midi_and_strings_are_not_code():
    src = '\\score { { c\'1 } % \\midi { }\n %{ \\midi { } %} \\header { t = "\\midi {" } \\layout { } }'
    out, counts = add_midi_to_printed_scores(src)
    assert counts["printed_scores"] == 1
    assert out.count("\\midi { }") == 3          # two in comments, one added
    mask = code_mask(src)
    assert not mask[src.index("% \\midi")]


def test_scores_inside_book_are_found():
    src = r"\book { \bookpart { \score { { c'1 } \layout { } } } }"
    assert len(list(iter_scores(find_blocks(src)))) == 1


def test_no_score_block_is_a_piece_error():
    with pytest.raises(PieceError, match="no score block"):
        add_midi_to_printed_scores(r"{ c'1 }")


def test_commented_includes_and_lilypond_files_are_not_missing(tmp_path):
    from pipeline.data.normalize import include_closure
    (tmp_path / "a.ly").write_text('%\\include "property.ly"\n\\include "english.ly"\n\\include "b.ily"\n\\include "gone.ily"\n')
    (tmp_path / "b.ily").write_text("x = { c1 }\n")
    files, missing = include_closure(tmp_path / "a.ly")
    assert [f.name for f in files] == ["a.ly", "b.ily"] and missing == ["gone.ily"]
