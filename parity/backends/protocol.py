"""What a backend adapter owes: the interface `parity.backends.torch` and `parity.backends.keras` implement.

A new backend is one more module with these names (`tests/parity/backends/test_protocol.py` checks
every adapter against this list, names and parameters). Arrays cross the boundary as numpy, images
NCHW, weights under torchvision's keys in PyTorch layouts (`parity.core.layout` converts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from parity.spec import ResNetSpec


class Adapter(Protocol):
    """The functions every `parity.backends.<name>` module defines."""

    NAME: str
    NATIVE_FORMATS: tuple[str, ...]
    INFERENCE_VARIANTS: tuple[str, ...]

    # -- building and placing
    def build(self, spec: ResNetSpec, dtype: str = "float32") -> Any: ...
    def dtype_scope(self, dtype: str) -> contextlib.AbstractContextManager[None]: ...
    def dtype_of(self, model: Any) -> str: ...
    def to_device(self, model: Any, device: str) -> Any: ...
    def data_parallel(self) -> Any: ...

    # -- weights
    def tensors(self, model: Any) -> dict[str, Any]: ...
    def get_weights(self, model: Any) -> dict[str, np.ndarray]: ...
    def get_shapes(self, model: Any) -> dict[str, tuple[int, ...]]: ...
    def assign(self, model: Any, arrays: Mapping[str, np.ndarray]) -> None: ...
    def count_params(self, model: Any) -> tuple[int, int]: ...
    def framework_counts(self, model: Any) -> dict[str, int]: ...

    # -- running
    def run_stages(
        self, model: Any, x: np.ndarray, device: str = "cpu", training: bool = False
    ) -> dict[str, np.ndarray]: ...
    def run_unit(self, model: Any, name: str, x: np.ndarray, device: str = "cpu") -> np.ndarray: ...
    def float64(self, model: Any) -> contextlib.AbstractContextManager[Any]: ...
    def calibrate(self, model: Any, batches: list[np.ndarray]) -> None: ...
    def cuda_available(self) -> bool: ...
    def tf32(self, allow: bool) -> contextlib.AbstractContextManager[None]: ...
    def threads(self) -> int: ...
    def set_threads(self, count: int) -> None: ...
    def seed(self, value: int) -> None: ...
    def device_name(self, device: str) -> str: ...

    # -- export
    def onnx_refusal(self, spec: ResNetSpec | None = None) -> str | None: ...
    def export_onnx(
        self,
        model: Any,
        tmp: Path,
        nchw: bool,
        opset: int,
        height: int,
        width: int,
        input_name: str,
        output_name: str,
        batch_axis: str,
    ) -> None: ...

    # -- training
    def make_optimizer(
        self,
        model: Any,
        name: str,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> Any: ...
    def stock_optimizer(
        self,
        model: Any,
        name: str,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eps: float | None = None,
    ) -> Any: ...
    def train_step(self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]: ...
    def train_step_with_gradients(
        self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]: ...
    def predict_logits(self, model: Any, images: np.ndarray) -> np.ndarray: ...
    def optimizer_state(self, model: Any, optimizer: Any) -> dict[str, np.ndarray]: ...
    def load_optimizer_state(self, model: Any, optimizer: Any, state: Mapping[str, np.ndarray]) -> None: ...

    # -- checkpoint files
    def read_native(
        self, fmt: str, path: Path, spec: ResNetSpec | None
    ) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]: ...
    def write_native(self, fmt: str, weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec) -> None: ...

    # -- timing and lessons
    def inference_step(self, model: Any, x: np.ndarray, variant: str = ...) -> Callable[[], Any]: ...
    def flatten(self, x: np.ndarray) -> np.ndarray: ...


MEMBERS = tuple(name for name in Adapter.__dict__ if not name.startswith("_")) + tuple(Adapter.__annotations__)
"""Every name an adapter module must define."""


def missing(module: Any) -> list[str]:
    """The names of `Adapter` that `module` does not define."""
    return [name for name in MEMBERS if not hasattr(module, name)]
