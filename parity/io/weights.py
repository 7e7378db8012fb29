"""Canonical weights: one dict of numpy arrays for a model of either backend.

Keys are torchvision's `state_dict` keys, layouts PyTorch's (conv OIHW, dense out x in), BN running
statistics included, `num_batches_tracked` left out (a counter, not a weight; accepted and ignored
on input). The mapping from Keras variable paths is a rule, not a table: drop the model's name,
`/` -> `.`, then rename the last part (kernel/gamma -> weight, beta -> bias, moving_* -> running_*).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from parity.backends import adapter
from parity.spec import NUM_BATCHES_TRACKED, ResNetSpec

LISTED_KEYS = 8
"""How many keys of each kind an error message names before it says how many more there are."""


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:LISTED_KEYS])
    return shown + (f", ... and {len(keys) - LISTED_KEYS} more" if len(keys) > LISTED_KEYS else "")


class WeightMismatchError(ValueError):
    """A set of weights does not fit a model; names the offending keys (all of them in `.missing` etc.)."""

    def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[str], headline: str = ""):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        self.headline = headline
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): " + _listing(missing))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): " + _listing(unexpected))
        if mismatched:
            parts.append(f"{len(mismatched)} mis-shaped tensor(s): " + _listing(mismatched))
        self.details = "; ".join(parts)
        lead = f"{headline}; " if headline else ""
        super().__init__(lead + "weights do not fit the model (nothing was changed): " + self.details)

    @property
    def count(self) -> int:
        """How many keys are missing, unexpected or mis-shaped."""
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    def with_headline(self, headline: str) -> WeightMismatchError:
        """The same error, led by a sentence that says what went wrong in words."""
        return WeightMismatchError(self.missing, self.unexpected, self.mismatched, headline)


def get_weights(model: Any) -> dict[str, np.ndarray]:
    """Canonical weights of a model of either backend (copies, float32 as stored).

    Args:
        model: a `resnet_torch.ResNet` or a built `resnet_keras.ResNet`.
    """
    return adapter(model).get_weights(model)


def match_shapes(
    expected: Mapping[str, tuple[int, ...]], weights: Mapping[str, Any], strict: bool = True
) -> dict[str, np.ndarray]:
    """Check weights against expected key -> shape; return them as float arrays in expected order.

    Raises WeightMismatchError listing every missing (when strict), unexpected (when strict) and
    mis-shaped or non-float key. `num_batches_tracked` counters are ignored. Nothing is changed.
    """
    given = {k: v for k, v in weights.items() if not k.endswith(NUM_BATCHES_TRACKED)}
    missing = [k for k in expected if k not in given] if strict else []
    unexpected = [k for k in given if k not in expected] if strict else []
    mismatched = []
    arrays = {}
    for key, shape in expected.items():
        if key not in given:
            continue
        value = np.asarray(given[key])
        if tuple(value.shape) != tuple(shape):
            mismatched.append(f"{key} (expected {tuple(shape)}, got {tuple(value.shape)})")
        elif not np.issubdtype(value.dtype, np.floating):
            mismatched.append(f"{key} (expected a float tensor, got dtype {value.dtype})")
        else:
            arrays[key] = value
    if missing or unexpected or mismatched:
        raise WeightMismatchError(missing, unexpected, mismatched)
    return arrays


def check_weights(model: Any, weights: Mapping[str, Any], strict: bool = True) -> dict[str, np.ndarray]:
    """Validate canonical weights against a model (see `match_shapes`)."""
    return match_shapes(get_shapes(model), weights, strict)


def get_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Canonical key -> PyTorch-layout shape, as the model holds them."""
    return adapter(model).get_shapes(model)


def set_weights(model: Any, weights: Mapping[str, Any], strict: bool = True) -> None:
    """Load canonical weights into a model of either backend.

    Everything is validated before anything is assigned, so on error the model is unchanged.

    Args:
        model: a `resnet_torch.ResNet` or a built `resnet_keras.ResNet`.
        weights: canonical key -> array (numpy, or anything `np.asarray` takes) in PyTorch layout.
        strict: require every key to be present and no extra key; shapes are always checked.
    """
    arrays = check_weights(model, weights, strict=strict)
    adapter(model).assign(model, arrays)


def copy_weights(src: Any, dst: Any, strict: bool = True) -> None:
    """Copy every canonical weight from one model to another (any backend to any backend).

    Args:
        src: the model to read.
        dst: the model to write; must be of the same spec (shapes are checked key by key).
        strict: as in `set_weights`.
    """
    set_weights(dst, get_weights(src), strict=strict)


def random_weights(
    spec: ResNetSpec, seed: int = 0, calibrate: bool = False, size: int | tuple[int, int] = 64
) -> dict[str, np.ndarray]:
    """Seeded canonical weights with non-identity BatchNorm parameters and statistics.

    Convs follow torchvision's init (kaiming normal, fan_out); the fc nn.Linear's. BN gamma and beta
    are drawn so BN really transforms its input (never the identity).

    Uncalibrated (`calibrate=False`), running mean/variance are drawn at random and the last BN of
    each residual branch gets a small gamma so activations stay O(1) through 152 layers: a network
    that damps rounding noise, unlike a trained one. Calibrated (`calibrate=True`, what `check` uses),
    every gamma is drawn the same way and the running statistics are then measured by
    training-mode forward passes on seeded standard-normal images (`calibrate_weights`), so every
    BN output has unit scale at every depth, as in a trained network.

    Args:
        spec: the architecture.
        seed: seed of numpy's default generator; same seed, same draws, on any machine.
        calibrate: measure the BN running statistics on data (needs torch or Keras).
        size: calibration image size, H or (H, W).
    """

    def draw_norm(rng: np.random.Generator, kind: str, shape: tuple[int, ...], last: bool) -> np.ndarray:
        if kind == "weight":
            low, high = (0.1, 0.4) if last and not calibrate else (0.5, 1.5)
            return rng.uniform(low, high, shape)
        if kind == "bias":
            return rng.normal(0.0, 0.1, shape)
        if kind == "running_mean":
            return rng.normal(0.0, 0.2, shape)
        return rng.uniform(0.5, 2.0, shape)  # running_var

    weights = _seeded(spec, seed, draw_norm)
    if calibrate:
        weights = calibrate_weights(spec, weights, seed, size)
    return weights


def _torchvision_draw(
    rng: np.random.Generator, shape: tuple[int, ...], weight_shape: tuple[int, ...], kind: str
) -> np.ndarray:
    """A conv weight (kaiming normal, fan_out, as torchvision) or an fc weight/bias or conv bias (nn.Linear's)."""
    if kind == "weight" and len(shape) == 4:
        fan_out = shape[0] * shape[2] * shape[3]
        return rng.normal(0.0, np.sqrt(2.0 / fan_out), shape)
    bound = 1.0 / np.sqrt(np.prod(weight_shape[1:]))  # U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    return rng.uniform(-bound, bound, shape)


def initial_weights(spec: ResNetSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded weights initialised as torchvision's ResNet does, to train from: convs kaiming normal
    (fan_out), BN gamma 1 (0 for each block's last BN with `zero_init_residual`) and beta 0, running
    mean 0 and variance 1, the fc as nn.Linear. Framework-free, so either backend starts from the same draw.

    Args:
        spec: the architecture.
        seed: seed of numpy's default generator.
    """

    def init_norm(rng: np.random.Generator, kind: str, shape: tuple[int, ...], last: bool) -> np.ndarray:
        if kind == "weight":
            return np.full(shape, 0.0 if spec.zero_init_residual and last else 1.0)
        return np.ones(shape) if kind == "running_var" else np.zeros(shape)

    return _seeded(spec, seed, init_norm)


def _seeded(
    spec: ResNetSpec, seed: int, norm: Callable[[np.random.Generator, str, tuple[int, ...], bool], np.ndarray]
) -> dict[str, np.ndarray]:
    """Canonical float32 weights: convs and fc drawn as torchvision does, each BN tensor from
    `norm(rng, kind, shape, is_last_bn_of_its_block)`, all from one generator in canonical key order."""
    rng = np.random.default_rng(seed)
    shapes = spec.canonical_shapes()
    last_norms = {f"{plan.name}.{plan.norms[-1].name}" for plan in spec.block_plans()}
    weights: dict[str, np.ndarray] = {}
    for key, shape in shapes.items():
        module, kind = key.rsplit(".", 1)
        if f"{module}.running_mean" not in shapes:  # a conv or the fc
            value = _torchvision_draw(rng, shape, shapes[f"{module}.weight"], kind)
        else:
            value = norm(rng, kind, shape, module in last_norms)
        weights[key] = value.astype(np.float32)
    return weights


CALIBRATION_BATCHES = 2
CALIBRATION_BATCH = 8
"""Calibration passes: 2 batches of 8 seeded images (at 7x7, layer4's BN sees 784 values per channel)."""


def calibrate_weights(
    spec: ResNetSpec,
    weights: Mapping[str, Any],
    seed: int = 0,
    size: int | tuple[int, int] = 64,
    backend: str | None = None,
    images: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The same weights with BN running statistics measured on seeded standard-normal images (or on `images`).

    Training-mode forward passes (no weight update) average each BN's batch mean and unbiased
    variance over `CALIBRATION_BATCHES` batches, as torch's momentum=None does.

    Args:
        spec: the architecture.
        weights: canonical weights (running statistics are replaced).
        seed: seeds the calibration images.
        size: image size, H or (H, W).
        backend: "torch" or "keras" to calibrate with (default: torch if installed).
        images: NCHW images to measure them on instead (`parity.io.photos`), in `CALIBRATION_BATCHES` batches.
    """
    import importlib.util

    from parity.backends import adapter_named

    height, width = (size, size) if isinstance(size, int) else size
    name = backend or ("torch" if importlib.util.find_spec("torch") is not None else "keras")
    side = adapter_named(name)
    model = side.build(spec)
    set_weights(model, weights)
    rng = np.random.default_rng(seed + 2_000_003)
    batches = [
        rng.standard_normal((CALIBRATION_BATCH, spec.in_channels, height, width)).astype(np.float32)
        for _ in range(CALIBRATION_BATCHES)
    ]
    if images is not None:
        batches = [np.ascontiguousarray(part) for part in np.array_split(images, CALIBRATION_BATCHES)]
    side.calibrate(model, batches)
    return get_weights(model)
