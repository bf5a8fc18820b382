"""Scripts and dataset/iterator modules of the CBST port (ademxapp layout)."""
