\version "2.18.2"
\header { title = "T" mutopiacomposer = "TestC" mutopiainstrument = "Piano" license = "Public Domain" }
\score { \new PianoStaff << \new Staff \relative c'' { c4 d e f | g1 } \new Staff { \clef bass c1 c1 >> \layout { } }
