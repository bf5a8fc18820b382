"""`python -m issegm.demo`: the whole demo pipeline (issegm/demo/pipeline.py)."""
import sys

from issegm.demo.pipeline import main

if __name__ == '__main__':
    sys.exit(main())
