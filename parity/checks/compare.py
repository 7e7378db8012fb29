"""Run two models on the same input and compare their logits and every stage output.

Inputs are given NCHW (PyTorch's layout) and converted once, at the NHWC boundary of a Keras model;
Keras outputs are converted back to NCHW before comparison.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from parity.backends import adapter, adapter_named, loaded_backends, spec_of
from parity.checks.diff import Report, StageDiff, nonfinite_line
from parity.core import tolerances
from parity.spec import ResNetSpec

DEVICES = ("cpu", "cuda")


@contextlib.contextmanager
def precision(device: str, allow_tf32: bool = False) -> Iterator[bool]:
    """Turn TF32 off (unless allowed) in every loaded framework for the block; yields `tf32 in use`.

    On CPU there is no TF32, so nothing changes and it yields False.
    """
    check_device(device)
    if device == "cpu":
        yield False
        return
    with contextlib.ExitStack() as stack:
        for name in loaded_backends():
            stack.enter_context(adapter_named(name).tf32(allow_tf32))
        yield allow_tf32


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")


def cuda_available() -> bool:
    """True when torch sees a CUDA device (the only GPU check CI needs: it has none)."""
    try:
        return adapter_named("torch").cuda_available()
    except ImportError:
        return False


def run_stages(model: Any, x: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """Inference-mode stage outputs of a model of either backend, as NCHW numpy arrays.

    Args:
        model: a resnet_torch or resnet_keras model.
        x: input batch, NCHW float32.
        device: "cpu" or "cuda".
    """
    check_device(device)
    x = np.ascontiguousarray(x, dtype=np.float32)
    return adapter(model).run_stages(model, x, device)


def _check_pair(a: Any, b: Any, x: np.ndarray) -> ResNetSpec:
    spec = spec_of(a)
    if spec_of(b) != spec:
        raise ValueError(f"the two models have different specs:\n  a: {spec}\n  b: {spec_of(b)}")
    if x.ndim != 4 or x.shape[1] != spec.in_channels:
        raise ValueError(f"x must be NCHW with {spec.in_channels} channels, got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float array (a normalised image batch), got dtype {x.dtype}")
    return spec


def compare(
    a: Any,
    b: Any,
    x: np.ndarray,
    device: str = "cpu",
    tolerance: float | None = None,
    allow_tf32: bool = False,
    labels: tuple[str, str] | None = None,
    float64: bool = True,
    seed: int | None = None,
) -> Report:
    """Run `a` (the reference) and `b` on `x` and judge the port and the fp32 agreement.

    fp32: both models as they are, every stage compared. float64 (unless `float64=False`): both
    models again in float64 on the same weights (torch: a float64 copy; Keras: the same model under
    a float64 compute policy), every stage end to end, then every unit of `b` on `a`'s input to it;
    inside the first unit that fails, every layer alone. See `Report` for the verdicts.

    Args:
        a: reference model (either backend): this project's, or any torch module or Keras model that is a ResNet
            (read off its layers and proved by running it, `parity.checks.live`; layers named by its own names), or
            such a model's `parity.checks.live.Proof`.
        b: model under test (either backend), the same network.
        x: input batch, NCHW float (numpy).
        device: "cpu" or "cuda"; on CUDA, TF32 is off unless `allow_tf32`.
        tolerance: a fixed max relative difference per fp32 stage instead of the noise-aware one.
        allow_tf32: let CUDA matmuls/convs use TF32 (the float64 pass then judges the port alone;
            the fp32 stages get the fixed TF32 tolerance).
        labels: names for the two models in the report (default: their backends).
        float64: run the float64 pass (default); off, fixed fp32 tolerances decide.
        seed: recorded in the report's provenance when weights/input were seeded.
    """
    from parity.checks import localise
    from parity.checks.live import stand_in
    from parity.core import provenance

    x = np.asarray(x)
    a, proof_a = stand_in(a)
    b, proof_b = stand_in(b)
    spec = _check_pair(a, b, x)
    name, tol = tolerances.for_run(device, allow_tf32, spec.name, spec.depth)
    fixed = tolerance is not None or allow_tf32
    if tolerance is not None:
        name, tol = "custom", float(tolerance)
    side_a, side_b = adapter(a), adapter(b)
    start = time.perf_counter()
    with precision(device, allow_tf32) as tf32:
        out_a = run_stages(a, x, device)
        out_b = run_stages(b, x, device)
        labelled = labels or (side_a.NAME, side_b.NAME)
        if labelled[0] == labelled[1]:  # two models of one framework
            labelled = (f"{labelled[0]} (reference)", f"{labelled[1]} (under test)")
        nonfinite = nonfinite_line(
            x,
            {labelled[0]: side_a.get_weights(a), labelled[1]: side_b.get_weights(b)},
            {labelled[0]: out_a, labelled[1]: out_b},
        )
        report = Report(
            a=labels[0] if labels else side_a.NAME,
            b=labels[1] if labels else side_b.NAME,
            arch=spec.name,
            input_shape=list(x.shape),
            device=device,
            tf32=tf32,
            tolerance=tol,
            tolerance_name=name,
            provenance=provenance.collect(device, "float32", tf32, seed, side_a.device_name(device)),
            nonfinite=nonfinite,
            names={side: p.reading.names for side, p in (("a", proof_a), ("b", proof_b)) if p is not None},
            proofs=[p.line() for p in (proof_a, proof_b) if p],
        )
        if not float64:
            report.float64_note = (
                "float64 pass off: fixed fp32 tolerances decide ("
                + f"{name}={tol:.0e} per stage, FP32_UNIT={tolerances.FP32_UNIT:.0e} per unit)"
            )
            report.stages = [StageDiff.measure(s, out_a[s], out_b[s], tol) for s in spec.stage_names]
            _localise(report, spec, side_a, a, side_b, b, x, device, tolerances.FP32_UNIT, "float32")
        else:
            f64_start = time.perf_counter()
            with side_a.float64(a) as a64, side_b.float64(b) as b64:
                trace = localise.trace_units(
                    spec, lambda unit, inp: side_a.run_unit(a64, unit, inp, device), x.astype(np.float64)
                )
                ref64 = localise.stage_outputs(spec, trace)
                test64 = side_b.run_stages(b64, x.astype(np.float64), device)
                report.float64 = True
                report.float64_stages = [
                    StageDiff.measure(s, ref64[s], test64[s], tolerances.FP64) for s in spec.stage_names
                ]
                _localise(report, spec, side_a, a64, side_b, b64, x, device, tolerances.FP64, "float64", trace)
            report.float64_seconds = time.perf_counter() - f64_start
            if fixed:
                report.stages = [StageDiff.measure(s, out_a[s], out_b[s], tol) for s in spec.stage_names]
                report.float64_note = f"fp32 stages against the fixed {name}={tol:.0e}"
            else:
                report.tolerance_name = "FP32_NOISE_MULTIPLE"
                report.tolerance = tolerances.FP32_NOISE_MULTIPLE
                report.stages = [
                    StageDiff.against_noise(
                        s,
                        out_a[s],
                        out_b[s],
                        ref64[s],
                        test64[s],
                        tolerances.FP32_NOISE_MULTIPLE,
                        tolerances.FP32_FLOOR,
                    )
                    for s in spec.stage_names
                ]
    report.seconds = time.perf_counter() - start
    return report


def _localise(
    report: Report,
    spec: ResNetSpec,
    side_a: Any,
    a: Any,
    side_b: Any,
    b: Any,
    x: np.ndarray,
    device: str,
    tol: float,
    dtype: str,
    trace: list | None = None,
) -> None:
    """Fill report.blocks (every unit of b on a's input) and report.layers (inside the first wrong one)."""
    from parity.checks import localise

    x = x.astype(dtype)
    if trace is None:
        trace = localise.trace_units(spec, lambda unit, inp: side_a.run_unit(a, unit, inp, device), x)
    report.blocks_dtype = dtype
    report.blocks = [
        StageDiff.measure(unit, out, side_b.run_unit(b, unit, inp, device), tol) for unit, inp, out in trace
    ]
    wrong = report.first_wrong_block
    if wrong is None:
        return
    inputs = {unit: inp for unit, inp, _ in trace}
    steps = localise.trace_layers(spec, lambda layer, inp: side_a.run_unit(a, layer, inp, device), wrong, inputs[wrong])
    report.layers = [
        StageDiff.measure(layer, out, side_b.run_unit(b, layer, inp, device), tol) for layer, inp, out in steps
    ]
