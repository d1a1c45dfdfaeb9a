"""Evaluation: retrieval of every model, the paper's experiments, tables and figures."""
