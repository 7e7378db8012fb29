"""Any torch module or Keras model that is a ResNet, read as it is: its spec, with every hyperparameter taken
from its layers, and its weights under canonical names.

A state dict does not hold BatchNorm's eps, where a bottleneck strides, a conv's padding or a pool's ceil mode;
the live model does. `read_live` walks the model's layers (`Adapter.live_layers`), lines the layers with weights
up with a spec's by structure (`parity.io.structure`, any names), reads the spec's sizes off the shapes
(`parity.io.infer`), then the hyperparameters off the layers: BatchNorm eps and momentum, the stride's place,
paddings, the stem pool. What the spec cannot express is refused naming the layer and the value
(`layer3.0.bn2.eps is 0.001 where the rest use 1e-05`), never dropped. Then the spec's own model is built in the
same framework and read the same way, and every conv, BatchNorm and fc compared with the user's, attribute by
attribute. What no layer shows (a functional activation, the order of operations inside a block) is proved by
running both: `parity.checks.live`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parity.backends import adapter, backend_of
from parity.backends.interface import LiveLayer
from parity.core.layout import keras_key
from parity.io.infer import infer_spec
from parity.io.structure import Layer, spec_layers
from parity.io.weights import WeightMismatchError
from parity.spec import PRESETS, VARIANTS, ResNetSpec, make_spec

WITH_WEIGHTS = ("conv", "bn", "fc")
COMPARED = {"conv": ("kernel", "stride", "dilation", "groups", "bias"), "bn": ("eps", "momentum"), "fc": ("bias",)}
"""The attributes of each layer kind held against the spec's own model (torch's padding too, see `_differences`)."""


@dataclass
class Reading:
    """What `read_live` found: the spec, canonical weights, and {canonical layer: the model's own layer name}."""

    spec: ResNetSpec
    weights: dict[str, np.ndarray]
    names: dict[str, str]
    backend: str
    label: str
    unread: list[str] = field(default_factory=list)
    """Layers the reader does not know ('name (Class)') that hold no weights: the run must prove them harmless."""


def assumptions(spec: ResNetSpec) -> str:
    """What a weights-only file does not hold and a check of it therefore assumes, as `spec` has it."""
    stem_eps = f", the stem's {spec.stem_bn_eps:g}" if spec.stem_bn_eps is not None else ""
    padding = "TF 'same' padding" if spec.padding == "same" else "PyTorch's symmetric padding"
    stride = "the first 1x1 (v1)" if spec.stride_on == "v1" else "the 3x3 (v1.5, torchvision)"
    return (
        f"BatchNorm eps {spec.bn_eps:g}{stem_eps} and momentum {spec.bn_momentum:g} (PyTorch's convention), {padding}, "
        f"the stem max-pool padded {spec.pool_padding} and flooring (ceil_mode False), "
        + ("a ReLU on the main path before the addition" if spec.relu_before_add else "ReLU after the addition")
        + (f", a bottleneck's stride on {stride}" if spec.block == "bottleneck" else "")
    )


def label_of(model: Any) -> str:
    return f"your {type(model).__name__}"


def read_live(model: Any) -> Reading:
    """The spec and canonical weights of any torch module or Keras model that is a ResNet the spec describes.

    Raises ValueError (one line, naming the layer and the value) for what the spec cannot express.
    """
    side = adapter(model)
    label = label_of(model)
    records = side.live_layers(model)
    _refuse_unknown(records, label)
    layers = [Layer(r.name, r.kind, r.tensors) for r in records if r.kind in WITH_WEIGHTS]
    by_name = {r.name: r for r in records}
    refusal = None
    # Several specs can fit the same order and shapes (an avg-down shortcut's pool has no weights): the first
    # whose every conv, BatchNorm and fc has the model's attributes is the reading.
    for spec, names in _structures(layers, label):
        mine = {canonical: by_name[name] for canonical, name in names.items()}
        spec = spec.replace(**_hyperparameters(spec, mine, records, names, label))
        ours = side.build(spec)
        theirs = _canonical_records(side.live_layers(ours), backend_of(model), getattr(ours, "name", ""))
        differ = [(r.name, *d) for c, r in mine.items() for d in _differences(r, theirs.get(c))]
        if differ:
            name, attr, value, expected = differ[0]
            refusal = refusal or f"{label}: {name}.{attr} is {_shown(value)}; {spec.name} builds {_shown(expected)}"
            continue
        weights = {
            f"{c}.{role}": np.ascontiguousarray(v, np.float32) for c, r in mine.items() for role, v in r.tensors.items()
        }
        unread = [f"{r.name!r} ({r.cls})" for r in records if r.kind == "other"]
        return Reading(spec, weights, names, backend_of(model), label, unread)
    raise ValueError(refusal)


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _refuse_unknown(records: list[LiveLayer], label: str) -> None:
    """Weights the reader cannot place, and activations other than the ResNet's, refused by name."""
    for r in records:
        if r.kind == "other" and r.tensors:
            raise ValueError(f"{label}: layer {r.name!r} ({r.cls}) holds weights but is no conv, BatchNorm or fc")
        if r.kind == "act" and r.attrs.get("fn") not in ("relu", "sigmoid"):
            raise ValueError(f"{label}: layer {r.name!r} is a {r.attrs.get('fn')} activation; these ResNets use ReLU")
        if r.kind == "conv" and r.attrs.get("activation", "linear") != "linear":
            raise ValueError(
                f"{label}: conv {r.name!r} applies {r.attrs['activation']} itself; these ResNets apply ReLU "
                "after BatchNorm (build the conv with activation=None)"
            )
        if r.kind == "fc" and r.attrs.get("activation", "linear") != "linear":
            raise ValueError(
                f"{label}: {r.name!r} applies {r.attrs['activation']} to the logits; build it with activation=None "
                "(keras.applications: classifier_activation=None) to compare logits"
            )


def _structures(layers: list[Layer], label: str) -> Iterator[tuple[ResNetSpec, dict[str, str]]]:
    """Each (spec whose layers with weights the model's fit, in order and shape; {canonical: the model's name});
    ValueError where none does."""
    if not layers or layers[0].kind != "conv" or np.ndim(layers[0].tensors["weight"]) != 4:
        raise ValueError(f"{label}: its first layer with weights is no 2-D conv, so it is no ResNet the spec describes")
    kinds = [layer.kind for layer in layers]
    fc = layers[-1].tensors["weight"].shape[0] if kinds[-1] == "fc" else 0
    held = {"num_classes": fc, "in_channels": layers[0].tensors["weight"].shape[1]}
    tried = set()
    given: list[ResNetSpec] = []
    for arch in PRESETS:
        for variant in VARIANTS:
            try:
                candidate = make_spec(arch, variant, **held)
            except ValueError:
                continue
            for shortcut_first in (False, True):
                target = spec_layers(candidate, shortcut_first)
                names = tuple(t.name for t in target)
                if [t.kind for t in target] != kinds or names in tried:
                    continue
                tried.add(names)
                weights = {f"{t.name}.{r}": v for s, t in zip(layers, target) for r, v in s.tensors.items()}
                try:
                    spec = infer_spec(weights)
                except (ValueError, WeightMismatchError):
                    continue
                fitted = spec_layers(spec, shortcut_first)
                fits = len(fitted) == len(layers) and all(
                    s.signature() == t.signature() for s, t in zip(layers, fitted)
                )
                if fits and spec not in given:
                    given.append(spec)
                    yield spec, {t.name: s.name for s, t in zip(layers, fitted)}
    if given:
        return
    count = Counter(kinds)
    raise ValueError(
        f"{label}: its {len(layers)} layers with weights ({count['conv']} convs, {count['bn']} BatchNorms, "
        f"{count['fc']} fc) fit no ResNet the spec describes in any order of their blocks"
    )


def _named(own: str, canonical: str, attr: str) -> str:
    return f"{own}.{attr}" if own == canonical else f"{own}.{attr} ({canonical}.{attr})"


def _uniform(found: list[tuple[str, float]], attr: str, names: Mapping[str, str], label: str) -> float:
    common = Counter(v for _, v in found).most_common(1)[0][0]
    for canonical, value in found:
        if not np.isclose(value, common, rtol=1e-9, atol=0):
            raise ValueError(
                f"{label}: {_named(names[canonical], canonical, attr)} is {_shown(value)} where the rest use "
                f"{_shown(common)}; the spec "
                f"has one BatchNorm {attr} for the network{' (and one eps for the stem)' if attr == 'eps' else ''}"
            )
    return common


def _hyperparameters(
    spec: ResNetSpec, mine: dict[str, LiveLayer], records: list[LiveLayer], names: dict[str, str], label: str
) -> dict[str, Any]:
    """The fields no weight shape shows, read off the model's layers."""
    fields: dict[str, Any] = {}
    stem_bn = "bn1" if "bn1" in mine else None
    norms = [(c, r) for c, r in mine.items() if r.kind == "bn"]
    if any(r.attrs["momentum"] is None for _, r in norms):
        odd = next(c for c, r in norms if r.attrs["momentum"] is None)
        raise ValueError(
            f"{label}: {names[odd]}.momentum is None (a cumulative average); the spec's BatchNorms use one"
        )
    fields["bn_eps"] = _uniform([(c, r.attrs["eps"]) for c, r in norms if c != stem_bn], "eps", names, label)
    fields["bn_momentum"] = _uniform([(c, r.attrs["momentum"]) for c, r in norms], "momentum", names, label)
    if stem_bn is not None and not np.isclose(mine[stem_bn].attrs["eps"], fields["bn_eps"], rtol=1e-9, atol=0):
        fields["stem_bn_eps"] = mine[stem_bn].attrs["eps"]
    if spec.block == "bottleneck" and "layer2.0.conv1" in mine:
        fields["stride_on"] = "v1" if mine["layer2.0.conv1"].attrs["stride"] != (1, 1) else spec.stride_on
    convs = [r for r in mine.values() if r.kind == "conv"]
    if any(r.attrs["padding"] == "same" for r in convs if max(r.attrs["kernel"]) > 1):
        fields["padding"] = "same"
    stem = mine.get("conv1")
    if (
        stem is not None
        and isinstance(stem.attrs["padding"], tuple)
        and stem.attrs["padding"][0] != stem.attrs["kernel"][0] // 2
    ):
        fields["stem_padding"] = stem.attrs["padding"][0]
    pools = [r for r in records if r.kind == "maxpool"]
    for pool in pools[:1]:  # the stem's; later ones are V2's strided 1x1 shortcuts (`shortcut="subsample"`)
        if pool.attrs.get("ceil_mode"):
            raise ValueError(f"{label}: {pool.name}.ceil_mode is True; the spec's stem pool floors, as torchvision's")
        if pool.attrs["kernel"] != (3, 3) or pool.attrs["stride"] != (2, 2):
            raise ValueError(
                f"{label}: {pool.name} pools {pool.attrs['kernel']} with stride {pool.attrs['stride']}; the spec's stem "
                "pool is 3x3, stride 2"
            )
        if isinstance(pool.attrs["padding"], tuple):
            fields["pool_padding"] = pool.attrs["padding"][0]
    return {k: v for k, v in fields.items() if getattr(spec, k) != v}


def _canonical_records(records: list[LiveLayer], backend: str, model_name: str) -> dict[str, LiveLayer]:
    """The spec's own model's layers with weights, by canonical layer name."""
    found = {}
    for r in records:
        if r.kind not in WITH_WEIGHTS:
            continue
        name = keras_key(f"{r.name}/kernel", model_name).rpartition(".")[0] if backend == "keras" else r.name
        found[name] = r
    return found


def _differences(mine: LiveLayer, theirs: LiveLayer | None) -> list[tuple[str, Any, Any]]:
    """(attribute, the model's value, the spec's model's value) where a conv, BatchNorm or fc differ."""
    if theirs is None:
        return []
    attrs = [*COMPARED[mine.kind], *(["padding"] if isinstance(mine.attrs.get("padding"), tuple) else [])]
    found = []
    for attr in attrs:
        value, expected = mine.attrs.get(attr), theirs.attrs.get(attr)
        if isinstance(value, float) and isinstance(expected, (int, float)):
            same = abs(value - expected) <= 1e-9 * abs(expected)
        else:
            same = value == expected
        if not same:
            found.append((attr, value, expected))
    return found
