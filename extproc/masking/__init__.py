"""The masking engine: an answer in, the same answer with its PHI masked out, and a report
of what was masked (entity types, counts, JSON paths; never the values). Pure: no gRPC, no
Envoy, no I/O but reading its own configuration. `extproc.exchange` drives it."""

from extproc.masking.config import MaskingConfig, load_masking_config
from extproc.masking.engine import Carried, Masker, MaskingError, MaskReport

__all__ = [
    "Carried",
    "MaskReport",
    "Masker",
    "MaskingConfig",
    "MaskingError",
    "load_masking_config",
]
