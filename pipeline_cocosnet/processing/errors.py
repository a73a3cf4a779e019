"""The error every layer of ``processing/`` raises for a structure input it cannot use.

It lives below the layers (formats → backends → encoders) so that each can raise it; the
message names the input and the problem in one line.
"""

from __future__ import annotations

__all__ = ["StructureError"]


class StructureError(ValueError):
    """A structure input that cannot be encoded; the message names the problem."""
