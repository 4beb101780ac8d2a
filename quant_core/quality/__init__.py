"""Model quality of a quantization, measured as ``llama-perplexity --kl-divergence`` does.

Needs the optional runtime (``pip install 'quant-explorer[quality]'``, llama-cpp-python); every
other part of quant_core works without it. Entry points are generators (progress, then a
:class:`QualityReport`; stop iterating to cancel):

* :func:`iter_quality` -- a candidate GGUF against a base GGUF;
* :func:`iter_plan_quality` -- a plan, exported to a temporary file and measured;
* :func:`iter_speed` -- prompt and generation speed of a GGUF, as ``llama-bench`` measures it.
"""

from __future__ import annotations

from .cache import cache_dir
from .errors import INSTALL_HINT, BaseFileError, QualityError, RuntimeMissingError
from .measure import QualityProgress, iter_base_pass, iter_candidate_pass, iter_quality, read_text_file
from .plan_quality import iter_plan_quality
from .plan_speed import iter_plan_speed
from .runtime import runtime_available
from .speed import SpeedReport, SpeedSettings, bench_default_threads
from .speed_process import iter_speed
from .stats import QualityReport

__all__ = [
    "INSTALL_HINT",
    "BaseFileError",
    "QualityError",
    "QualityProgress",
    "QualityReport",
    "RuntimeMissingError",
    "SpeedReport",
    "SpeedSettings",
    "bench_default_threads",
    "cache_dir",
    "iter_base_pass",
    "iter_candidate_pass",
    "iter_plan_quality",
    "iter_plan_speed",
    "iter_quality",
    "iter_speed",
    "read_text_file",
    "runtime_available",
]
