"""Wrapper: upstream's first-release name for issegm.rounds.phase (one phase of one round).

Named as yzou2/CBST issegm/self-paced-self-trained-segresnet.py; it only runs
issegm.rounds.phase.main (the code and its documentation are in issegm/rounds/phase.py).
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.rounds.phase import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
