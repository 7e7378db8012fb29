"""How figures are written: in tables (`fmt_sci`) and in JSON (`json_safe`)."""

from __future__ import annotations

import math
from typing import Any


def fmt_sci(value: float) -> str:
    """A figure for a table: 1.23e-07, or nan."""
    return "nan" if value != value else f"{value:.2e}"


def json_safe(value: Any) -> Any:
    """A copy with NaN and inf floats replaced by None, so strict JSON readers parse it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
