\version "2.18.2"
\header { title = "T" mutopiacomposer = "TestC" mutopiainstrument = "Piano" license = "Public Domain" }
\score { << \new Staff \relative c'' { c4 d e f | g1 } \new Staff \relative c' { e2 g | b1 } \new Staff { \clef bass c1 c1 } >> \layout { } \midi { } }
