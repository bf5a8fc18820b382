"""Old path of the demo data generator, kept so that `python issegm/make_demo_data.py ...` and
`python -m issegm.make_demo_data ...` work as documented; the code is issegm/demo/make_data.py."""
import os
import sys

if __package__ in (None, ''):  # run by path: the repo root (which holds issegm) onto sys.path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.demo.make_data import *  # noqa: E402,F401,F403
from issegm.demo.make_data import __all__, main  # noqa: E402,F401

if __name__ == '__main__':
    sys.exit(main())
