"""The data side: the corpus index, LilyPond engraving and its analysis, fluidsynth renderings and
spectrograms, passages, the dataset stage."""
