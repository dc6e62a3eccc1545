"""biolake's logger: one line per event on stderr, quiet with ``logging.getLogger("biolake")``."""

from __future__ import annotations

import logging
import sys

logger = logging.getLogger("biolake")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("→ %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
