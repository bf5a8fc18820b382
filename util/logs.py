"""Logging to the console and, optionally, to a log file (scripts' `--log-file`)."""
import logging
import os
import sys

from util.errors import is_disk_full


class LogFileHandler(logging.FileHandler):
    """A log file that stays quiet when the disk is full (logging would print a traceback for
    every line): the run's own failing write reports the full disk, in one line."""

    def handleError(self, record):
        if is_disk_full(sys.exc_info()[1]):
            return
        super().handleError(record)


def setup_logging(log_file=None, name='cbst', debug=False):
    """Configure the project logger: INFO lines (DEBUG too with `debug`, the scripts' --debug)
    to stdout and to `log_file` when given."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter('%(asctime)s %(message)s', '%Y-%m-%d %H:%M:%S')
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handler = LogFileHandler(log_file)
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logger.propagate = False
    return logger


def rank_log_file(log_file, rank):
    """The log file of one worker of a distributed run: `log_file` for rank 0, `BASE.rankR.log`
    beside it for the others (several hosts appending to one file would garble it)."""
    if rank == 0:
        return log_file
    return '%s.rank%d.log' % (os.path.splitext(log_file)[0], rank)
