"""Plumbing every layer uses: constants, parameters, errors, stage status and timings, small
tables, retrieval metrics, the dvc.yaml compiler."""
