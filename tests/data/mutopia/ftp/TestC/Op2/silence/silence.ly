\version "2.18.2"
\header { title = "T" mutopiacomposer = "TestC" mutopiainstrument = "Piano" license = "Public Domain" }
\score { \new PianoStaff << \new Staff { R1*4 } \new Staff { \clef bass R1*4 } >> \layout { } \midi { } }
