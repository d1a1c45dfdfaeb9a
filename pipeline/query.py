"""``python -m pipeline.query``: the user's query command (audio file or database piece -> top-k pieces and
where they match); it lives in :mod:`pipeline.evaluation.query`."""
import sys

from pipeline.evaluation.query import main

if __name__ == "__main__":
    sys.exit(main())
