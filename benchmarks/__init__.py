"""Speed figures (seconds per DFAD iteration, loader throughput) and the original release's
iteration they compare with."""
