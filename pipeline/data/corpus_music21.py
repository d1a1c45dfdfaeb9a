"""The embedded default corpus: music21's solo-keyboard works and Bach chorales on a grand staff.

Solo works are converted from their original MusicXML with ``musicxml2ly`` (music21's own
LilyPond writer gives poor engraving); ``.krn`` works and the chorales go through music21 ->
MusicXML first. Chorales are reduced to two staves: soprano + alto chordified on a treble staff,
tenor + bass chordified on a bass staff.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

from pipeline.core.errors import PieceError

SCORE_SUFFIXES = (".mxl", ".krn", ".xml", ".musicxml")


def is_chorale(corpus_path: str) -> bool:
    """``bach/bwv2.6`` (a chorale, reduced to a grand staff) vs ``bach/bwv846.mxl`` (a keyboard work)."""
    return corpus_path.startswith("bach/bwv") and Path(corpus_path).suffix not in SCORE_SUFFIXES


def piece_name(corpus_path: str) -> str:
    """``joplin/maple_leaf_rag.mxl`` -> ``music21__joplin__maple_leaf_rag`` (MSMD-like composer__opus__file)."""
    path = Path(corpus_path)
    if path.suffix in SCORE_SUFFIXES:
        path = path.with_suffix("")
    parts = path.parts
    if is_chorale(corpus_path):  # chorales: bach/bwv2.6 -> bach__chorales__bwv2-6
        parts = ("bach", "chorales", parts[-1])
    opus = parts[1] if len(parts) > 2 else parts[-1]
    return "__".join(re.sub(r"[^A-Za-z0-9_-]", "-", x) for x in (parts[0], opus, parts[-1]))


def _grand_staff_chorale(path: str):
    from music21 import clef, corpus, layout, stream
    score = corpus.parse(path)
    s, a, t, b = score.parts[:4]
    out = stream.Score()
    staves = []
    for voices, cl in (((s, a), clef.TrebleClef()), ((t, b), clef.BassClef())):
        chords = stream.Score(list(voices)).chordify()
        staff = stream.PartStaff()
        for m in chords.getElementsByClass(stream.Measure):
            staff.append(m)
        for lyric_note in staff.recurse().notes:
            lyric_note.lyrics = []
        first = staff.getElementsByClass(stream.Measure).first()
        for old in first.getElementsByClass(clef.Clef):
            first.remove(old)
        first.insert(0, cl)
        staves.append(staff)
        out.insert(0, staff)
    out.insert(0, layout.StaffGroup(staves, symbol="brace"))
    return out


def _stable_part_ids(xml: Path) -> None:
    """Rename the parts of a MusicXML file P1, P2, ... in order. music21 exports random part ids,
    which musicxml2ly turns into voice names, so the .ly and LilyPond's MIDI (track names) differed
    from one build to the next."""
    text = xml.read_text(encoding="utf-8")
    ids = list(dict.fromkeys(re.findall(r'<score-part id="([^"]+)"', text)))
    for i, old in enumerate(ids, 1):
        text = text.replace(f'id="{old}"', f'id="P{i}"')
    xml.write_text(text, encoding="utf-8")


def write_source(corpus_path: str, out_dir: Path, timer=None) -> Path:
    """Write ``out_dir/<name>.ly`` for a music21 corpus work (``bach/bwvX.Y`` chorales are reduced).
    ``timer`` (a :class:`pipeline.core.stage.Timer`) gets the time of LilyPond's ``musicxml2ly`` as part ``musicxml2ly``."""
    from music21 import corpus
    name = piece_name(corpus_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = None if is_chorale(corpus_path) else Path(str(corpus.getWork(corpus_path)))
        if src is not None and src.suffix in (".mxl", ".xml", ".musicxml"):
            xml = tmp / ("in" + src.suffix)
            shutil.copy(src, xml)
        else:
            score = _grand_staff_chorale(corpus_path) if src is None else corpus.parse(corpus_path)
            xml = Path(score.write("musicxml", fp=str(tmp / "in.musicxml")))
            _stable_part_ids(xml)
        cmd = ["musicxml2ly", "--nsb", "--npb", "--npl", "--no-beaming"]
        if xml.suffix == ".mxl":
            cmd.append("-z")
        with timer.part("musicxml2ly") if timer else nullcontext():
            res = subprocess.run(cmd + ["-o", "out.ly", xml.name], cwd=tmp, capture_output=True, text=True)
        if res.returncode != 0 or not (tmp / "out.ly").exists():
            raise PieceError("musicxml2ly failed", res.stderr.strip()[-300:])
        text = (tmp / "out.ly").read_text(encoding="utf-8")
    # drop the converter's date stamps (artifacts must not depend on the day) and point-and-click
    text = "\n".join(ln for ln in text.splitlines()
                      if not ln.startswith("% automatically converted") and "\\pointAndClickOff" not in ln
                      and "encodingdate" not in ln)
    text = re.sub(r'title = +"Music21 Fragment"', f'title = "{name}"', text)
    out = out_dir / f"{name}.ly"
    out.write_text(text + "\n", encoding="utf-8")
    return out


def convert(corpus_path: str, out_dir: Path, timer=None) -> Path:
    """:func:`write_source`, with every failure of the conversion as a :class:`PieceError` (music21
    raises many exception types on bad input), so that the piece is quarantined, not the run stopped."""
    try:
        return write_source(corpus_path, out_dir, timer)
    except PieceError:
        raise
    except Exception as e:
        raise PieceError("music21 conversion failed", f"{type(e).__name__}: {e}") from e


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write the LilyPond source of one music21 corpus work "
                                             "(a debugging aid: the piece stage converts in its own process).")
    ap.add_argument("--work", required=True, help="music21 corpus path, e.g. joplin/maple_leaf_rag.mxl")
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    args = ap.parse_args(argv)
    try:
        convert(args.work, args.out)
    except PieceError as e:
        print(f"[corpus_music21] {args.work}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
