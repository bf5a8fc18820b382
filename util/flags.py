"""Parsing of upstream-style flag values."""
import argparse


def parse_bool(text):
    """Upstream passes booleans as strings: `--with-prior True|False`, `--cache-images 0|1`."""
    value = str(text).strip().lower()
    if value in ('1', 'true', 'yes'):
        return True
    if value in ('0', 'false', 'no'):
        return False
    raise argparse.ArgumentTypeError('expected True/False or 1/0, got %r' % text)
