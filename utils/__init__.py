"""Shared machinery of the scripts: the adversarial loop, teacher training, checkpoints, CLI."""
