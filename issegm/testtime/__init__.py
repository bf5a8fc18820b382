"""The test-time path of phase val and evaluate.py (docs/algorithm.md section 2)."""
