"""Shared machinery of the DFAD scripts: the adversarial loop, teacher training, checkpoints, CLI."""
