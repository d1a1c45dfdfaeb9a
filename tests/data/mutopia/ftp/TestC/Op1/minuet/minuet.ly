\version "2.18.2"
\header { title = "T" mutopiacomposer = "TestC" mutopiainstrument = "Piano" license = "Public Domain" }
upper = \relative c'' { \time 3/4 \repeat volta 2 { c4 e g | f2 e4 | d4 g b | c2. | } e4 d c | b a g | a b c~ | c2. | c4 g e | f a c | e, d g | c,2. \bar "|." }
lower = \relative c { \clef bass \time 3/4 \repeat volta 2 { c2. | d2 c4 | b2 g4 | c2. | } c4 e g | d2 g4 | f2 e4 | c2. | e2 c4 | f2 a4 | g2 g,4 | c2. }
\score { \new PianoStaff << \new Staff \upper \new Staff \lower >> \layout { } }
\score { \unfoldRepeats \new PianoStaff << \new Staff \upper \new Staff \lower >> \midi { \tempo 4 = 120 } }
