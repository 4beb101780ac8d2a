"""Errors of the quality measurement (one readable line each, like every QuantError)."""

from __future__ import annotations

from ..errors import QuantError

INSTALL_HINT = "pip install 'quant-explorer[quality]'"


class QualityError(QuantError):
    """Bad input to a quality measurement: missing file, short text, different vocabularies..."""


class RuntimeMissingError(QualityError):
    """llama-cpp-python (the optional ``quality`` extra) is not installed."""

    def __init__(self) -> None:
        super().__init__(f"measuring quality needs llama.cpp's runtime: {INSTALL_HINT}")


class BaseFileError(QualityError):
    """A ``--kl-divergence-base`` file that is not one, truncated, or for another setup."""
