"""Wrapper: the per-round script's name in yzou2/CBST's first release (October 2018), which its
README of record passes as --self-training-script in the SYNTHIA2City command (renamed to
issegm/self-paced-self-trained-segresnet.py five days later). It only runs
issegm.rounds.phase.main (the code and its documentation are in issegm/rounds/phase.py).
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.rounds.phase import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
