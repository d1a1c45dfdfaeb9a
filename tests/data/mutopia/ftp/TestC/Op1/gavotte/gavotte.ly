\version "2.18.2"
\header { title = "Gavotte" mutopiacomposer = "TestC" mutopiainstrument = "Piano" license = "Public Domain" }
upper = \relative c'' {
  \time 2/2 \partial 2 d4 g, | a8 b c a b4 g | e' c a fis | g8 a b c d4 e | d2 d4 g, |
  a8 b c a b4 g | e' c a fis | g8 fis g a b4 a | g2 b4 d | c8 b a g fis4 a |
  d, fis a c | b8 a g fis e4 g | c, e g b | a8 g fis e d4 fis | g a b c | d8 c b a g4 fis | g2 \bar "|."
}
lower = \relative c' {
  \clef bass \time 2/2 \partial 2 b4 g | fis d g b | c a d d, | g b g c | b g b g |
  fis d g b | c a d d, | e c d d, | g2 g'4 b | a fis d c |
  b a g a | b c d e | c b a g | fis e d c | b a g fis | g b d d, | g2
}
\score { \new PianoStaff << \new Staff \upper \new Staff \lower >> \layout { } \midi { \tempo 2 = 60 } }
