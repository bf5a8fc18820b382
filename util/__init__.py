"""Library half of the CBST port: symbols, weight files, image ops, prefetching, schedulers."""
