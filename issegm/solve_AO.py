"""Wrapper: upstream's name for issegm.rounds.orchestrator (the round loop).

Named as yzou2/CBST issegm/solve_AO.py; it only runs issegm.rounds.orchestrator.main (the code
and its documentation are in issegm/rounds/orchestrator.py).
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.rounds.orchestrator import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
