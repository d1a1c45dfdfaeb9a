"""scorelink: audio–sheet-music passage retrieval, from LilyPond sources to results.

Layers, each importing only the ones before it (tests/test_dvcyaml.py checks it):
``core`` (constants, parameters, status files, metrics) -> ``data`` (corpus, engraving, audio,
passages, dataset) -> ``models`` (networks, training stages) -> ``evaluation`` (retrieval,
experiments, tables). A stage is ``python -m pipeline.<layer>.<stage>``.
"""
