"""Upstream's command name for issegm.self_training (see that module); kept so old command lines work."""
import os
import sys

if __package__ in (None, ''):  # run by path without installation: the repo root holds issegm
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from issegm.self_training import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
