"""CRST (Zou et al., ICCV 2019) on top of CBST; docs/algorithm.md section 3b explains it."""
