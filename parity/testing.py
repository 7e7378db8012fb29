"""Parity assertions for your own tests, and the pytest plugin that serves them as fixtures.

    from parity.testing import assert_parity
    assert_parity(torch_model, keras_model)          # seeded input of the spec's usual size
    assert_parity(torch_model, keras_model, x=batch)  # your NCHW float batch
    assert_parity(your_torch_module, your_keras_model)  # any two ResNets, neither built by this project

The pytest plugin (entry point `resnet_parity`, active once the package is installed) gives a test
the fixtures `parity_input` (a seeded-input factory) and `assert_parity`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_SIZE = 64


def seeded_input(model: Any, batch: int = 2, size: int | tuple[int, int] = DEFAULT_SIZE, seed: int = 0) -> np.ndarray:
    """A seeded standard-normal NCHW batch shaped for `model` (its spec's input channels).

    Args:
        model: a resnet_torch or resnet_keras model, or any torch module or Keras model that is a ResNet.
        batch: images in the batch.
        size: H or (H, W).
        seed: numpy seed.
    """
    from parity.checks.live import carries_spec
    from parity.io.inputs import random_input
    from parity.io.live import read_live

    height, width = (size, size) if isinstance(size, int) else size
    spec = model.spec if carries_spec(model) else read_live(model).spec
    return random_input(spec, batch, height, width, seed)


def assert_parity(
    model_a: Any,
    model_b: Any,
    x: np.ndarray | None = None,
    *,
    device: str = "cpu",
    float64: bool = True,
    tolerance: float | None = None,
    seed: int = 0,
) -> Any:
    """Raise AssertionError (message: the readable report) unless the two models agree.

    Both verdicts of `parity.checks.compare.compare` must pass: the port in float64 and the fp32 outputs
    within a measured multiple of the reference's own fp32 rounding. The message names the first
    wrong stage, block (`layer3.4`) and layer (`layer3.4.bn2`). Returns the report when it passes.

    Args:
        model_a: the reference model: this project's (either backend), or any torch module or Keras model that is
            a ResNet (torchvision's, timm's, a tutorial's, yours: read off its layers, proved by running it).
        model_b: the model under test, the same network (either backend, yours or this project's).
        x: NCHW float input; default `seeded_input(model_a, seed=seed)`.
        device: "cpu" or "cuda".
        float64: run the float64 pass (default); off, fixed fp32 tolerances decide.
        tolerance: a fixed fp32 tolerance per stage instead of the noise-aware one.
        seed: seeds the default input.
    """
    from parity.checks.compare import compare

    if x is None:
        x = seeded_input(model_a, seed=seed)
    report = compare(model_a, model_b, x, device=device, float64=float64, tolerance=tolerance, seed=seed)
    if not report.passed:
        raise AssertionError("models do not agree:\n" + str(report))
    return report
