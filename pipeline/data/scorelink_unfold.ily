% scorelink unfold: loaded with lilypond -dinclude-settings=... (the score source is not edited).
% Every score's music is unfolded as \unfoldRepeats does (volta, segno, percent and tremolo
% repeats played as written out) and only its MIDI is written: no page is engraved.
% A score's music carries cached lengths ('length) from the parser; they are cleared so that
% the unfolded repeats are timed by their own length callbacks.
#(define (scorelink:forget-lengths! music)
   (for-some-music (lambda (m) (ly:music-set-property! m 'length '()) #f) music)
   music)
#(define (scorelink:midi-def? def) (eq? (ly:output-def-lookup def 'output-def-kind) 'midi))
#(define (scorelink:unfold-score score)
   (let* ((music (scorelink:forget-lengths! (ly:music-deep-copy (ly:score-music score))))
          (unfolded (ly:make-score (unfold-repeats '() music)))
          (midi (filter scorelink:midi-def? (ly:score-output-defs score))))
     (for-each (lambda (def) (ly:score-add-output-def! unfolded def))
               (if (null? midi) (list #{ \midi { } #}) midi))
     (ly:message "SCORELINK unfolded ~a -> ~a" (ly:moment-main (ly:music-length (ly:score-music score)))
                 (ly:moment-main (ly:music-length (ly:score-music unfolded))))
     unfolded))
#(define toplevel-score-handler
   (let ((collect toplevel-score-handler))
     (lambda (score) (collect (scorelink:unfold-score score)))))
#(define book-score-handler
   (let ((add book-score-handler))
     (lambda (book score) (add book (scorelink:unfold-score score)))))
#(define bookpart-score-handler
   (let ((add bookpart-score-handler))
     (lambda (book score) (add book (scorelink:unfold-score score)))))
