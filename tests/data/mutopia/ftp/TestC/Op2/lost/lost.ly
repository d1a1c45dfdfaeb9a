\version "2.18.2"
\include "nowhere-to-be-found.ily"
\header { title = "T" mutopiacomposer = "TestC" mutopiainstrument = "Piano" license = "Public Domain" }
\score { \new PianoStaff << \new Staff \relative c'' { c1 } \new Staff { \clef bass c1 } >> \layout { } \midi { } }
