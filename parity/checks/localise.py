"""Block-by-block and layer-by-layer comparison, without compounding (framework-free).

End to end, an error in `layer1.0` reaches every later stage, and rounding grows with depth. Here
every unit of the model under test (the stem, each residual block, the head) runs on the
*reference* model's input to that unit, so each unit is judged alone; inside the first wrong unit
each layer with weights (conv, BatchNorm, fc) is judged alone the same way. The order of layers
inside a unit comes from the spec's plans; ReLU, flatten and the residual add are the same in every
framework and are computed here in numpy only to produce the next layer's input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from parity.spec import AttnPlan, ResNetSpec

Run = Callable[[str, np.ndarray], np.ndarray]
"""(unit or layer name, NCHW input) -> output, for one model (see the adapters' `run_unit`)."""


def unit_names(spec: ResNetSpec) -> list[str]:
    """'stem', every block ('layer1.0' ...), 'head': the units compared in isolation."""
    return ["stem"] + [plan.name for plan in spec.block_plans()] + ["head"]


def trace_units(spec: ResNetSpec, run: Run, x: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(unit, input, output) of every unit, run one after the other from the image `x`."""
    trace = []
    out = x
    for name in unit_names(spec):
        result = run(name, out)
        trace.append((name, out, result))
        out = result
    return trace


def stage_outputs(spec: ResNetSpec, trace: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stage outputs (stem, layer1.., logits or features) read off a unit trace: the last block of each stage."""
    outputs = {}
    for name, _, out in trace:
        stage = spec.output_name if name == "head" else name.split(".")[0]
        outputs[stage] = out
    return outputs


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _squeeze_excite(layer: Run, unit: str, attn: AttnPlan, x: np.ndarray) -> np.ndarray:
    """'se': each conv judged on the truth's pooled map; the mean, ReLU and gate computed here."""
    squeeze, excite = attn.convs
    scale = x.mean(axis=(2, 3), keepdims=True)
    scale = _relu(layer(f"{unit}.{squeeze.name}", scale))
    scale = layer(f"{unit}.{excite.name}", scale)
    return x * _sigmoid(scale)


def _efficient_channel(layer: Run, unit: str, attn: AttnPlan, x: np.ndarray) -> np.ndarray:
    """'eca': the 1-D conv judged on the truth's (N, 1, C) channel means; the gate computed here."""
    (conv,) = attn.convs
    scale = layer(f"{unit}.{conv.name}", x.mean(axis=(2, 3))[:, None, :])
    return x * _sigmoid(scale)[:, 0, :, None, None]


ATTENTION_STEPS: dict[str, Callable[[Run, str, AttnPlan, np.ndarray], np.ndarray]] = {
    "se": _squeeze_excite,
    "eca": _efficient_channel,
}
"""Attention kind -> its layers judged one by one inside a block (`parity.spec.ATTENTION`)."""


def trace_layers(spec: ResNetSpec, run: Run, unit: str, x: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(layer, input, output) of every layer with weights (and the max-pool) inside one unit."""
    steps: list[tuple[str, np.ndarray, np.ndarray]] = []

    def layer(name: str, inp: np.ndarray) -> np.ndarray:
        out = run(name, inp)
        steps.append((name, inp, out))
        return out

    if unit == "stem":
        stem = spec.stem_plan()
        out = x
        for conv, norm in zip(stem.convs, stem.norms):
            out = layer(conv.name, out)
            if norm is not None:
                out = _relu(layer(norm.name, out))
        if stem.pool is not None:
            layer(stem.pool.name, out)
        return steps
    if unit == "head":
        head = spec.head_plan()
        out = x
        if head.norm is not None:
            out = _relu(layer(head.norm.name, out))
        if head.pooling is not None:
            out = layer("avgpool", out)  # the global pool, average or max, under torchvision's name
            if head.out_features:
                layer(head.name, out.reshape(out.shape[0], -1))
        return steps
    plans = {plan.name: plan for plan in spec.block_plans()}
    if unit not in plans:
        raise KeyError(f"no unit {unit!r} in {spec.name}; units are stem, layer1.0 .. head")
    plan = plans[unit]
    out = x
    preactivated = x
    for index, (conv, norm) in enumerate(zip(plan.convs, plan.norms)):
        if plan.preact:  # BN-ReLU before the conv; the shortcut reads the first one's output
            out = _relu(layer(f"{unit}.{norm.name}", out))
            preactivated = out if index == 0 else preactivated
            out = layer(f"{unit}.{conv.name}", out)
            continue
        out = layer(f"{unit}.{conv.name}", out)
        out = layer(f"{unit}.{norm.name}", out)
        if index < len(plan.convs) - 1 or plan.relu_before_add:
            out = _relu(out)
    if plan.attn is not None:
        out = ATTENTION_STEPS[plan.attn.kind](layer, unit, plan.attn, out)
    identity = preactivated if plan.preact and plan.downsample is not None else x
    if plan.shortcut_pool is not None:
        identity = layer(f"{unit}.{plan.shortcut_pool.name}", identity)
    if plan.downsample is not None:
        conv, norm = plan.downsample
        identity = layer(f"{unit}.{conv.name}", identity)
        if norm is not None:
            layer(f"{unit}.{norm.name}", identity)
    return steps
