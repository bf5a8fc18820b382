"""The CBST demo: synthetic GTA-5 -> Cityscapes data and the whole pipeline run on it
(`python -m issegm.demo`, `make demo`); docs/demo.md describes its rooms, data and domain shift.
"""
