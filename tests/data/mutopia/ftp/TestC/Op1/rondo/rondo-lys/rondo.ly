\version "2.18.2"
\include "notes.ily"
\header { title = "T" mutopiacomposer = "TestC" mutopiainstrument = "Piano" license = "Public Domain" }
\score { \new PianoStaff << \new Staff \rh \new Staff \lh >> \layout { } \midi { \tempo 4 = 100 } }
