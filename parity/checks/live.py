"""The user's own models, checked as they are: `port`, and `compare` / `assert_parity` on any two ResNets.

`parity.io.live.read_live` reads a torch module or Keras model's spec and weights off its layers. That reading is
then proved: the spec's own model, built in the same framework with those weights, must compute what the user's
model computes on a seeded batch (in float64 where the framework can run the user's model in float64, torch; and
in fp32 within `FP32_NOISE_MULTIPLE` x the spec model's own fp32 rounding). Only a proved reading is used: a
port is built from it, and `compare` runs its verdicts on the proved stand-ins, naming layers by the user's names.
What no layer shows (a ReLU before the addition, written as a function) is found by trying the spec's other
reading of it; anything else is refused with the distance measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from parity.backends import adapter, adapter_named, backend_of
from parity.checks.diff import StageDiff
from parity.core import tolerances
from parity.core.errors import Unavailable, one_line
from parity.io.inputs import random_input
from parity.io.live import Reading, read_live
from parity.io.weights import set_weights
from parity.spec import ResNetSpec

PROOF_SIZE = 64
"""The seeded batch's size (2 x C x 64 x 64) where the model does not fix its input size."""


@dataclass
class Proof:
    """How a reading was proved: the float64 and fp32 distances of the user's model from the stand-in."""

    reading: Reading
    model: Any
    float64_rel: float | None
    fp32: StageDiff

    def line(self) -> str:
        f64 = f"{self.float64_rel:.1e} apart in float64, " if self.float64_rel is not None else ""
        return (
            f"{self.reading.label} ({self.reading.backend}) read as {self.reading.spec.name}: the model built from that "
            f"reading computes what it does ({f64}fp32 {self.fp32.max_rel:.1e}, {self.fp32.ratio or 0:.1f}x fp32 noise)"
        )


def carries_spec(model: Any) -> bool:
    return isinstance(getattr(model, "spec", None), ResNetSpec)


def _input_size(model: Any) -> tuple[int, int]:
    shape = getattr(model, "input_shape", None)  # a Keras model built for one size
    if isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[2]:
        return int(shape[1]), int(shape[2])
    return PROOF_SIZE, PROOF_SIZE


def _alternatives(spec: ResNetSpec) -> list[ResNetSpec]:
    """The reading first, then what no layer shows: the ReLU's place around the addition, Keras' 'same' padding."""
    other = "symmetric" if spec.padding == "same" else "same"
    found = [spec]
    for change in ({"relu_before_add": not spec.relu_before_add}, {"padding": other}):
        for known in list(found):
            try:
                found.append(known.replace(**change))
            except ValueError:  # a field this family has no place for
                continue
    return found


def prove(model: Any) -> Proof:
    """The reading of `model` and the spec's model that computes what it does (ValueError, measured, if none)."""
    reading = read_live(model)
    side = adapter(model)
    height, width = _input_size(model)
    x = random_input(reading.spec, 2, height, width, seed=0)
    theirs = side.run_live(model, x)
    try:
        theirs64: np.ndarray | None = side.run_live(model, x.astype(np.float64), "float64")
    except Unavailable:
        theirs64 = None
    closest: tuple[ResNetSpec, StageDiff, StageDiff | None] | None = None
    for spec in _alternatives(reading.spec):
        try:
            ours = side.build(spec)
        except ValueError:
            continue
        set_weights(ours, reading.weights)
        ours32 = side.run_live(ours, x)
        with side.float64(ours) as ours64_model:
            ours64 = side.run_stages(ours64_model, x.astype(np.float64))[spec.output_name]
        if ours32.shape != theirs.shape:
            raise ValueError(
                f"{reading.label}: its output is {theirs.shape}, the model built from its layers ({spec.name}) gives "
                f"{ours32.shape} on the same {tuple(x.shape)} batch"
            )
        fp32 = StageDiff.against_noise(
            "logits", ours32, theirs, ours64, ours64, tolerances.FP32_NOISE_MULTIPLE, tolerances.FP32_FLOOR
        )
        f64 = StageDiff.measure("logits", ours64, theirs64, tolerances.FP64) if theirs64 is not None else None
        if fp32.passed and (f64 is None or f64.passed):
            reading.spec = spec
            return Proof(reading, ours, f64.max_rel if f64 else None, fp32)
        if closest is None or (f64 or fp32).max_rel < (closest[2] or closest[1]).max_rel:
            closest = (spec, fp32, f64)
    assert closest is not None
    spec, fp32, f64 = closest
    unread = f"; layers this reader does not know: {', '.join(reading.unread)}" if reading.unread else ""
    in64 = f"{f64.max_rel:.1e} in float64, " if f64 is not None else ""
    raise ValueError(
        f"{reading.label}: read as {spec.name}, but the model built from its layers is {in64}{fp32.max_rel:.1e} in fp32 "
        f"({fp32.ratio or 0:.0f}x fp32 noise) from its output: it computes something no layer shows (an activation "
        f"written as a function, the order inside a block){unread}"
    )


def port(model: Any, to: str = "keras") -> Any:
    """This project's model of `to` ('torch' or 'keras') that computes what your torch module or Keras model does.

    Every hyperparameter comes from the model's layers (`parity.io.live`), and the reading is proved by running
    both (`prove`); what the spec cannot express is refused in one line naming the layer and the value.

    Args:
        model: any torch `nn.Module` or `keras.Model` that is a ResNet (torchvision, timm, a tutorial's, yours).
        to: the framework of the returned model.
    """
    if to not in ("torch", "keras"):
        raise ValueError(f"to must be 'torch' or 'keras', got {to!r}")
    proof = prove(model)
    if backend_of(model) == to:
        return proof.model
    other = adapter_named(to).build(proof.reading.spec)
    set_weights(other, proof.reading.weights)
    return other


def stand_in(model: Any) -> tuple[Any, Proof | None]:
    """(a model `compare` can run: the model itself when this project built it, else its proved stand-in; a
    `Proof` already made is used as it is, so a model is read and run once)."""
    if isinstance(model, Proof):
        return model.model, model
    if carries_spec(model):
        return model, None
    proof = prove(model)
    return proof.model, proof


def from_factory(text: str, weights: str | None = None) -> Any:
    """The model `PACKAGE.MODULE:FACTORY` returns (called with no arguments), with a weights file loaded into it.

    The current folder is searched first, as `python -m` does. Raises ValueError (one line) for a module,
    factory or file that does not give a torch module or Keras model.
    """
    import importlib
    import os
    import sys
    from pathlib import Path

    from parity.io.formats import format_of

    module_name, sep, factory_name = text.partition(":")
    if not sep or not module_name or not factory_name.isidentifier():
        raise ValueError(f"--module {text}: give PACKAGE.MODULE:FACTORY, e.g. torchvision.models:resnet50")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--module {text}: cannot import {module_name} ({exc})") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ValueError(f"--module {text}: {module_name} has no callable {factory_name}")
    try:
        model = factory()
    except Exception as exc:  # the user's code: any exception, said in one line
        raise ValueError(f"--module {text}: {factory_name}() raised {type(exc).__name__}: {one_line(exc)}") from None
    try:
        side = adapter(model)
    except TypeError:
        raise ValueError(
            f"--module {text}: {factory_name}() returned a {type(model).__name__}, not a torch module or Keras model"
        ) from None
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise ValueError(f"--weights {weights}: no such file")
        fmt = format_of(path)
        raw = None if side.NAME == "keras" else (fmt.read(path, None)[1] if fmt.read else None)
        try:
            side.load_live(model, path, raw)
        except ValueError:
            raise
        except Exception as exc:  # the framework's own loading errors
            raise ValueError(
                f"--weights {weights} does not load into {type(model).__name__}: {one_line(exc)}"
            ) from None
    return model
