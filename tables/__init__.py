"""Results: the CSV rows the runs write and get_results.py reads, and the paper's Table 2."""
