rh = \relative c'' { \partial 4 g4 | c8 d e f g4 g | \grace { a16 } g4 f e d | c2 r4 g | \repeat unfold 6 { c8 e g e c4 c | } c1 \bar "|." }
lh = \relative c { \clef bass \partial 4 r4 | c2 e | g,2 g | c2 r | \repeat unfold 6 { c4 g c g | } c1 }
