"""The one error type of the project: a leaf module, so that every other module may import it."""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad path, wrong checkpoint, ...): reported as one line."""
