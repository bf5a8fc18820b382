"""Wrapper: the module path `python -m issegm.launch` of the parameter-server launcher.

The README's command; it only runs util.launch.main (the code and its documentation are in
util/launch.py).
"""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds util
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from util.launch import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
