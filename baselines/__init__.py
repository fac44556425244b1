"""The baseline rows of Table 2 (MNIST column): KD-ORI, RANDOM and DAFL, on the DFAD engine."""
