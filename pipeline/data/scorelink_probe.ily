% scorelink probe: loaded with lilypond -dinclude-settings=... (the score source is not edited).
% At output time (all positions final) it prints one line per staff and per notehead:
%   SCORELINK staff score=S sys=K start=A/B end=C/D x0=.. x1=..   (staff-line extent, staff spaces)
%   SCORELINK head  score=S sys=K when=A/B grace=E/F pitch=P x0=.. x1=..
% Moments are exact rationals in whole notes; x is relative to the system's reference point.
#(define scorelink:scores '())
#(define (scorelink:score-id sys)
   ;; scores are numbered in order of first output; a score = one unbroken System original
   (let* ((orig (ly:grob-original sys)) (hit (assq orig scorelink:scores)))
     (if hit (cdr hit)
         (let ((n (length scorelink:scores)))
           (set! scorelink:scores (acons orig n scorelink:scores)) n))))
#(define (scorelink:mom->str m)
   (format #f "~a/~a" (ly:moment-main-numerator m) (ly:moment-main-denominator m)))
#(define (scorelink:system-index sys)
   (let* ((orig (ly:grob-original sys))
          (pieces (if (ly:grob? orig) (ly:spanner-broken-into orig) '())))
     (let loop ((l pieces) (i 0))
       (cond ((null? l) -1) ((eq? (car l) sys) i) (else (loop (cdr l) (1+ i)))))))
#(define (scorelink:staff-attrs grob)
   (let* ((sys (ly:grob-system grob))
          (lc (ly:spanner-bound sys LEFT)) (rc (ly:spanner-bound sys RIGHT))
          (ext (ly:grob-extent grob sys X)))
     (ly:message "SCORELINK staff score=~a sys=~a start=~a end=~a x0=~a x1=~a"
                 (scorelink:score-id sys) (scorelink:system-index sys)
                 (scorelink:mom->str (ly:grob-property lc 'when))
                 (scorelink:mom->str (ly:grob-property rc 'when))
                 (car ext) (cdr ext))
     '()))
#(define (scorelink:head-attrs grob)
   (let* ((sys (ly:grob-system grob))
          (w (ly:grob-property (ly:item-get-column grob) 'when))
          (ev (event-cause grob))
          (p (and (ly:stream-event? ev) (ly:event-property ev 'pitch #f)))
          (ext (ly:grob-extent grob sys X)))
     (ly:message "SCORELINK head score=~a sys=~a when=~a grace=~a/~a pitch=~a x0=~a x1=~a"
                 (scorelink:score-id sys) (scorelink:system-index sys) (scorelink:mom->str w)
                 (ly:moment-grace-numerator w) (ly:moment-grace-denominator w)
                 (if (ly:pitch? p) (+ 60 (ly:pitch-semitones p)) -1)
                 (car ext) (cdr ext))
     '()))
\layout {
  \context { \Staff \override StaffSymbol.output-attributes = #scorelink:staff-attrs }
  \context { \Voice \override NoteHead.output-attributes = #scorelink:head-attrs }
}
