"""Teachers, students and generators of DFAD (SPEC §4)."""
from network import gan, lenet

__all__ = ["gan", "lenet"]
