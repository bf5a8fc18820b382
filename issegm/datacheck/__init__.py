"""Checks of a list file's images and labels before hours of work are spent on them (no MXNet).

problems.py: a Problem and how it is reported; headers.py: what a file's header says;
id_space.py: label values against the dataset's ids; lists.py: a whole list, quick or full.
The command is issegm/check_data.py; the rules: docs/internals.md, section 6.
"""
