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


def test_lilypond_batch_keeps_recovered_errors_and_hands_failures_back(tmp_path):
    """A batch result is kept exactly when the piece alone would pass (LilyPond's exit status): a piece with
    an error LilyPond recovers from is not engraved twice; a failed file is handed back for a run alone."""
    from pipeline.data.probe import failed_files, run_lilypond, run_lilypond_batch
    sources = {"good": r"{ c'4 d' e' f' }",
               "recovered": "#(car (quote ()))\n{ c'4 d' e' f' }",      # "Guile signaled an error", still a PDF
               "broken": r"{ c'4 d' e' f' "}                              # unfinished input: a failed file
    mains = []
    for name, body in sources.items():
        (tmp_path / name).mkdir()
        mains.append(tmp_path / name / "main.ly")
        mains[-1].write_text(f'\\version "2.24.1"\n{body}\n')
    (tmp_path / "batch").mkdir()
    good, recovered, broken = run_lilypond_batch(mains, list(sources), tmp_path / "batch")
    assert good is not None and good.n_errors == 0
    assert recovered is not None and recovered.n_errors == 1 and recovered.pdf.exists()
    assert broken is None
    (tmp_path / "alone").mkdir()
    alone = run_lilypond(mains[1], "recovered", tmp_path / "alone")
    assert alone.stderr == recovered.stderr            # the log stored with the piece does not depend on the batch
    with pytest.raises(PieceError, match="lilypond failed"):
        run_lilypond(mains[2], "broken", tmp_path / "alone")
    # a piece that aborts LilyPond (a fatal Scheme error) ends the batch without a verdict: the pieces before
    # it without errors are kept, it and the pieces after it are handed back
    (tmp_path / "fatal").mkdir()
    (tmp_path / "fatal" / "main.ly").write_text('\\version "2.24.1"\n#(ly:error "stop")\n{ c\'4 }\n')
    (tmp_path / "crash").mkdir()
    before, fatal, after = run_lilypond_batch([mains[0], tmp_path / "fatal" / "main.ly", mains[1]],
                                              ["before", "fatal", "after"], tmp_path / "crash")
    assert before is not None and fatal is None and after is None
    assert failed_files('x\nfatal error: failed files: "a.ly" "b c.ly"\n') == {"a.ly", "b c.ly"}
    assert failed_files("x\nSuccess: compilation successfully completed\n") == set()
    assert failed_files("Processing `a.ly'\nParsing...\n") is None       # no verdict: a crash, judge each piece alone
