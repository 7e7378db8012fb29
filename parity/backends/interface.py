"""`Adapter`: what a model backend owes the rest of `parity`, written once.

`parity.backends.torch.TorchAdapter` and `parity.backends.keras.KerasAdapter` implement it; everything else
in `parity` calls an instance (`parity.backends.adapter_named("torch")`) and never imports a framework. Arrays
cross the boundary as numpy, images NCHW, weights under torchvision's keys in PyTorch layouts
(`parity.core.layout` converts). The abstract methods are what every backend must give; the few others have a
default that says the backend cannot (`Unavailable`), for what only one framework has (keras.applications,
the naive ports the lessons measure, DDP's accumulated step).

This module imports no framework (an import-linter contract).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from parity.core import threads
from parity.core.errors import Unavailable
from parity.spec import ResNetSpec


@dataclass
class LiveLayer:
    """One layer of a user's model as `Adapter.live_layers` reads it (the model's own name, in its order).

    kind: 'conv', 'bn', 'fc', 'maxpool', 'avgpool', 'globalpool', 'pad', 'act', 'add', 'passive' (computes
    nothing at inference) or 'other' (not understood); cls: its class name. attrs: the hyperparameters, in
    PyTorch's conventions (BatchNorm momentum as torch's, kernels and strides as (h, w) pairs; padding as (h, w) or
    Keras' 'same' / 'valid'). tensors: its weights by torchvision's roles ('weight', 'bias', 'running_mean',
    'running_var') in PyTorch layout.
    """

    name: str
    kind: str
    cls: str
    attrs: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


class DataParallel(Protocol):
    """A backend's data-parallel engine (`resnet_torch.distributed`: torchrun and DDP; `resnet_keras.distributed`:
    keras.distribution over JAX devices), as the trainer and `scale` drive it."""

    ENGINE: str

    def init(self, where: Any) -> tuple[int, int, str]: ...
    def convert(self, model: Any, sync_bn: bool, device: str) -> Any: ...
    def wrap(self, model: Any, device: str) -> Any: ...
    def all_sum(self, values: list[float]) -> list[float]: ...
    def broadcast(self, value: int) -> int: ...
    def check_sync_bn(self, device: str) -> None: ...
    def finish(self) -> None: ...


class Adapter(ABC):
    """One model backend: building, weights, running, export, training and files, in canonical terms.

    Instances come from `parity.backends.adapter_named`; making one applies `--threads` to its framework
    (`parity.core.threads.configured`), nothing is configured when its module is imported.
    """

    NAME: str
    """The backend's name ('torch', 'keras')."""
    NATIVE_FORMATS: tuple[str, ...] = ()
    """Checkpoint formats this framework reads and writes itself (`parity.io.formats`)."""
    INFERENCE_VARIANTS: tuple[str, ...] = ()
    """How `inference_step` can run a model (`bench`)."""
    LAYOUT: str = "NCHW"
    """The layout this framework's models take images in ('NCHW' torch, 'NHWC' Keras); what its exports take."""
    EXPORT_FORMATS: tuple[str, ...] = ()
    """Deployment formats the framework writes itself (`export_format`): Keras' `model.export` formats."""
    LOW_PRECISION: dict[str, str] = {}
    """Precision -> how `low_precision` computes in it, in words ('torch.autocast(bf16)')."""

    def __init__(self) -> None:
        count = threads.configured()
        if count is not None:
            self.set_threads(count)

    # -- building and placing

    @abstractmethod
    def build(self, spec: ResNetSpec, dtype: str = "float32") -> Any:
        """A model of `spec` with every variable created, computing in `dtype`."""

    @abstractmethod
    def dtype_scope(self, dtype: str) -> contextlib.AbstractContextManager[None]:
        """Models and optimizers made inside compute in `dtype`."""

    @abstractmethod
    def dtype_of(self, model: Any) -> str:
        """The dtype the model computes in ('float32', 'float64')."""

    @abstractmethod
    def to_device(self, model: Any, device: str) -> Any:
        """The model on `device` ("cpu", "cuda", "cuda:1")."""

    @abstractmethod
    def data_parallel(self) -> DataParallel:
        """The framework's own data-parallel engine."""

    # -- weights

    @abstractmethod
    def tensors(self, model: Any) -> dict[str, Any]:
        """Canonical key -> the model's own tensor or variable."""

    @abstractmethod
    def get_weights(self, model: Any) -> dict[str, np.ndarray]:
        """Canonical weights as numpy copies in PyTorch layout."""

    @abstractmethod
    def get_shapes(self, model: Any) -> dict[str, tuple[int, ...]]:
        """Canonical key -> PyTorch-layout shape."""

    @abstractmethod
    def assign(self, model: Any, arrays: Mapping[str, np.ndarray]) -> None:
        """Assign validated canonical arrays (see `parity.io.weights.set_weights`)."""

    @abstractmethod
    def count_params(self, model: Any) -> tuple[int, int]:
        """(trainable parameters, BN running-statistic elements) of a model or any of its parts."""

    @abstractmethod
    def framework_counts(self, model: Any) -> dict[str, int]:
        """The framework's own totals, named as the spec's `param_counts` names them."""

    # -- running

    @abstractmethod
    def run_stages(
        self, model: Any, x: np.ndarray, device: str = "cpu", training: bool = False
    ) -> dict[str, np.ndarray]:
        """Stage outputs (stem, layer1.., logits) as NCHW numpy arrays."""

    @abstractmethod
    def run_unit(self, model: Any, name: str, x: np.ndarray, device: str = "cpu") -> np.ndarray:
        """One unit ("stem", "head", a block) or layer (canonical name) alone, in inference mode."""

    @abstractmethod
    def float64(self, model: Any) -> contextlib.AbstractContextManager[Any]:
        """The same network computing in float64 for the block, on the same weights."""

    @abstractmethod
    def low_precision(self, model: Any, precision: str) -> contextlib.AbstractContextManager[Any]:
        """The same network computing in `precision` ('bf16', 'fp16') for the block, as the framework's users run
        it (torch: autocast; Keras: the mixed dtype policy), on the same fp32 weights; `run_stages` and `run_unit`
        inside take and give float32 (a unit's input rounded to `precision` first, as the previous unit gives it)."""

    @abstractmethod
    def calibrate(self, model: Any, batches: list[np.ndarray]) -> None:
        """Set every BN's running statistics to their average over `batches` (training-mode passes)."""

    @abstractmethod
    def cuda_available(self) -> bool:
        """Whether the framework sees a CUDA device."""

    @abstractmethod
    def tf32(self, allow: bool) -> contextlib.AbstractContextManager[None]:
        """TF32 on or off for the block; restored after."""

    @abstractmethod
    def threads(self) -> int:
        """Threads the framework computes with in this process (0: its default, every core)."""

    @abstractmethod
    def set_threads(self, count: int) -> None:
        """Compute with `count` threads where the framework still lets a running process choose."""

    @abstractmethod
    def seed(self, value: int) -> None:
        """Seed the framework's generators (a fresh model's initialisers draw from them)."""

    @abstractmethod
    def device_name(self, device: str) -> str:
        """The device as a person reads it."""

    def device_count(self) -> int:
        """Devices the framework can spread one process's work over (1 unless it can)."""
        return 1

    # -- export

    @abstractmethod
    def onnx_refusal(self, spec: ResNetSpec | None = None) -> str | None:
        """Why this process cannot export a model (of `spec`) to ONNX, or None."""

    @abstractmethod
    def export_onnx(
        self,
        model: Any,
        tmp: Path,
        nchw: bool,
        opset: int,
        shape: tuple[int, ...],
        dynamic: bool,
        input_name: str,
        output_name: str,
        batch_axis: str,
    ) -> None:
        """The framework's own ONNX export of `model` (or of one unit, `unit_model`) to `tmp`, traced at `shape`
        (in the graph's layout); batch, height and width left open with `dynamic`."""

    @abstractmethod
    def unit_model(self, model: Any, unit: str) -> Any:
        """A model of this framework computing one unit of `model` alone ('stem', a block 'layer2.0', 'head'), in
        inference mode, sharing its weights: what a runtime exports to find the first wrong unit inside it."""

    def export_program(self, model: Any, shape: tuple[int, ...], dynamic: bool) -> Any:
        """A `torch.export` program of `model` traced at `shape` (batch, and height and width where the network
        allows, dynamic with `dynamic`): what ExecuTorch, AOTInductor and OpenVINO compile."""
        raise Unavailable(f"a {self.NAME} model has no torch.export program")

    def export_format(
        self,
        model: Any,
        fmt: str,
        path: Path,
        shape: tuple[int, ...] | None,
        dynamic: bool,
        precision: str = "fp32",
        calibration: Sequence[np.ndarray] = (),
    ) -> None:
        """The framework's own export of `model` in `fmt` (one of `EXPORT_FORMATS`) to `path`, taking `shape`
        (batch, height and width left open with `dynamic`; None: the framework's own default signature), written in
        `precision` where the format's converter writes it ('fp16', 'int8' with ranges from `calibration`: batches
        in the export's layout)."""
        raise Unavailable(f"a {self.NAME} model does not export {fmt} itself")

    # -- training

    @abstractmethod
    def make_optimizer(
        self,
        model: Any,
        name: str,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> Any:
        """The `train` command's optimizer: torch's update rules in either framework."""

    @abstractmethod
    def stock_optimizer(
        self,
        model: Any,
        name: str,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eps: float | None = None,
    ) -> Any:
        """The framework's own optimizer with its own conventions (the lessons' naive port)."""

    @abstractmethod
    def train_step(self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """One optimizer step on an NCHW batch; (mean cross-entropy, correct predictions)."""

    @abstractmethod
    def train_step_with_gradients(
        self, model: Any, optimizer: Any, images: np.ndarray, labels: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """`train_step` that also returns every gradient before the update (canonical keys)."""

    @abstractmethod
    def predict_logits(self, model: Any, images: np.ndarray) -> np.ndarray:
        """Logits of one NCHW batch in inference mode."""

    @abstractmethod
    def optimizer_state(self, model: Any, optimizer: Any) -> dict[str, np.ndarray]:
        """The optimizer's state as '{slot}.{canonical key}' -> numpy."""

    @abstractmethod
    def load_optimizer_state(self, model: Any, optimizer: Any, state: Mapping[str, np.ndarray]) -> None:
        """Put back what `optimizer_state` returned (checked first; nothing changes on error)."""

    def accumulated_step(self, model: Any, optimizer: Any, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """One SGD step on the mean of the parts' gradients, BatchNorm per part: DDP in one process."""
        raise Unavailable(f"the {self.NAME} adapter has no accumulated step (DDP's reference)")

    # -- checkpoint files

    @abstractmethod
    def read_native(
        self, fmt: str, path: Path, spec: ResNetSpec | None
    ) -> tuple[ResNetSpec | None, dict[str, np.ndarray]]:
        """(the spec the file holds or None, canonical weights) of a file in one of `NATIVE_FORMATS`."""

    @abstractmethod
    def write_native(self, fmt: str, weights: Mapping[str, np.ndarray], tmp: Path, spec: ResNetSpec) -> None:
        """Write canonical weights of `spec` to `tmp` in one of `NATIVE_FORMATS`."""

    def keras_applications_model(
        self,
        constructor: str,
        num_classes: int,
        in_channels: int,
        path: Path | None = None,
        pooling: str | None = None,
        classifier_activation: str | None = None,
        input_shape: Sequence[int | None] | None = None,
    ) -> Any:
        """A keras.applications ResNet (`ResNet50V2`, ...), with a `.weights.h5` loaded if given."""
        raise Unavailable(f"keras.applications models are Keras models, not {self.NAME} ones")

    # -- timing

    @abstractmethod
    def inference_step(self, model: Any, x: np.ndarray, variant: str = "") -> Callable[[], Any]:
        """A no-argument callable running one inference batch (NCHW `x`) as `variant` runs it."""

    def matmul_step(self, size: int) -> Callable[[], Any]:
        """A no-argument callable multiplying two fp32 size x size matrices (the SGEMM peak of `bench`)."""
        raise Unavailable(f"the {self.NAME} adapter measures no matrix product")

    # -- lessons: what a naive port does

    @abstractmethod
    def flatten(self, x: np.ndarray) -> np.ndarray:
        """The framework's flatten of an NCHW map, as its model holds the map: features in its order."""

    def naive_ports(self) -> tuple[str, ...]:
        """The differences `build_naive` can leave unhandled (none unless the backend has naive ports)."""
        return ()

    def build_naive(self, spec: ResNetSpec, difference: str, dtype: str = "float32") -> Any:
        """A model of `spec` with one framework difference left unhandled, as a straightforward port has it."""
        raise ValueError(
            f"unknown difference {difference!r}; the {self.NAME} adapter builds "
            f"{', '.join(self.naive_ports()) or 'no naive ports'}"
        )

    def zero_padded_pool(self, x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
        """What a naive port does with torch's padded max-pool: zero padding, then a 'valid' pool (NCHW)."""
        raise Unavailable(f"the {self.NAME} adapter pads its max-pool itself")

    # -- any model of the framework, as the user has it (`parity.io.live`)

    @abstractmethod
    def owns(self, model: Any) -> bool:
        """True for any model of this framework, built by this project or not."""

    @abstractmethod
    def live_layers(self, model: Any) -> list[LiveLayer]:
        """Every layer of the model that computes, with its hyperparameters and tensors, in the model's order."""

    @abstractmethod
    def run_live(self, model: Any, x: np.ndarray, dtype: str = "float32") -> np.ndarray:
        """The model's output (logits) for NCHW `x` in `dtype`, inference mode, the model itself unchanged."""

    @abstractmethod
    def load_live(self, model: Any, path: Path, weights: Mapping[str, np.ndarray] | None) -> None:
        """Load a weights file saved from the model into it: `weights` (its arrays under the model's own names,
        read by `parity.io.formats`) or, where None, the file read by the framework itself (Keras' own files)."""

    def assign_reshaped(self, model: Any, arrays: Mapping[str, np.ndarray]) -> None:
        """Copy canonical weights by reshaping instead of transposing the kernels (a naive port)."""
        raise Unavailable(f"the {self.NAME} adapter holds PyTorch's layouts: nothing to reshape")
