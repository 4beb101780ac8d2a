"""Exception types of quant_core.

Every error a user can cause (bad file, bad type name, bad imatrix, ...) is raised as a
:class:`QuantError` subclass whose message is one readable line, so that the CLI and the GUI
can show ``str(err)`` as-is instead of a traceback.
"""

from __future__ import annotations


class QuantError(ValueError):
    """Base class of every user-facing error raised by quant_core."""


class UnknownTypeError(QuantError):
    """A type name that ggml does not know."""


class UnsupportedTypeError(QuantError):
    """A type ggml knows but that cannot be used for the requested operation."""


class ShapeError(QuantError):
    """An array whose shape does not fit the type (row length not divisible by the block)."""


class NonFiniteError(QuantError):
    """NaN or infinity in weights or importance values."""


class ImatrixError(QuantError):
    """An importance matrix that is missing, of the wrong length, or not finite."""


class EncoderError(QuantError):
    """An encoder name that is unknown, or that cannot encode the requested type."""
