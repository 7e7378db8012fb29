"""ResNet as a subclassed Keras 3 `keras.Model`, built from a `parity.spec.ResNetSpec`.

Read side by side with `resnet_torch/model.py`: same classes, same method order, same local names.
Every intentional difference is tagged `# FRAMEWORK:`. The layers and the factories that make them from the
spec's plans live in `resnet_keras/layers.py`; `ResNet(spec, layers=...)` builds with other factories.
Only `keras.layers` / `keras.ops` are used,
so the model runs under the TensorFlow, PyTorch and JAX Keras backends.

Layer names nest like torchvision's modules (`layer2` > `0` > `downsample` > `0`), so a variable
path `resnet/layer2/0/downsample/0/kernel` maps to the key `layer2.0.downsample.0.weight` by rule.
"""

from __future__ import annotations

from collections import OrderedDict

import keras

from parity.spec import BlockPlan, PoolPlan, ResNetSpec, StemPlan
from resnet_keras.layers import CHANNEL_AXIS, LAYERS, Layers, NegInfPadding2D, Sequential, local_name


class Block(keras.layers.Layer):
    """A post-activation residual block (ResNet v1, torchvision's BasicBlock and Bottleneck alike): each conv
    followed by its BatchNorm and a ReLU, the attention after the last norm, the addition, a ReLU.

    The convs are the plan's (two 3x3, or 1x1-3x3-1x1), so one class builds every depth and family.

    Args:
        plan: the block's `BlockPlan` from the spec.
        layers: the factories to build with (`resnet_keras.layers.LAYERS`).
    """

    def __init__(self, plan: BlockPlan, layers: Layers = LAYERS, **kwargs):
        super().__init__(name=str(plan.index), **kwargs)
        self.depth = len(plan.convs)
        for index, (conv, norm) in enumerate(zip(plan.convs, plan.norms), start=1):
            setattr(self, f"pad{index}", layers.pad(conv))
            setattr(self, f"conv{index}", layers.conv(conv))
            setattr(self, f"bn{index}", layers.norm(norm))
        self.relu = keras.layers.ReLU()
        self.se = layers.attn(plan.attn) if plan.attn is not None else None
        self.downsample = make_downsample(plan, layers)
        self.relu_before_add = plan.relu_before_add

    def call(self, x, training=None):
        identity = x
        out = x
        for index in range(1, self.depth + 1):
            out = getattr(self, f"pad{index}")(out)
            out = getattr(self, f"conv{index}")(out)
            out = getattr(self, f"bn{index}")(out, training=training)
            if index < self.depth or self.relu_before_add:
                out = self.relu(out)
        if self.se is not None:
            out = self.se(out)
        if self.downsample is not None:
            identity = self.downsample(x, training=training)
        out = out + identity
        out = self.relu(out)
        return out


class PreActBlock(keras.layers.Layer):
    """A pre-activation residual block (ResNet V2): BN-ReLU before each conv, the attention after the last conv,
    the addition; a projecting shortcut reads the pre-activated input.

    Args:
        plan: the block's `BlockPlan` from the spec (`preact` True).
        layers: the factories to build with (`resnet_keras.layers.LAYERS`).
    """

    def __init__(self, plan: BlockPlan, layers: Layers = LAYERS, **kwargs):
        super().__init__(name=str(plan.index), **kwargs)
        self.depth = len(plan.convs)
        for index, (conv, norm) in enumerate(zip(plan.convs, plan.norms), start=1):
            setattr(self, f"bn{index}", layers.norm(norm))
            setattr(self, f"pad{index}", layers.pad(conv))
            setattr(self, f"conv{index}", layers.conv(conv))
        self.relu = keras.layers.ReLU()
        self.se = layers.attn(plan.attn) if plan.attn is not None else None
        self.downsample = make_downsample(plan, layers)
        self.project = plan.downsample is not None

    def call(self, x, training=None):
        identity = x
        out = self.bn1(x, training=training)
        out = self.relu(out)
        if self.downsample is not None:
            # a projection reads the pre-activated input; V2's strided max-pool the block's own
            identity = self.downsample(out if self.project else x, training=training)
        out = self.pad1(out)
        out = self.conv1(out)
        for index in range(2, self.depth + 1):
            out = getattr(self, f"bn{index}")(out, training=training)
            out = self.relu(out)
            out = getattr(self, f"pad{index}")(out)
            out = getattr(self, f"conv{index}")(out)
        if self.se is not None:
            out = self.se(out)
        out = out + identity
        return out


def make_downsample(plan: BlockPlan, layers: Layers = LAYERS) -> Sequential | None:
    """The identity path, named as torchvision (`downsample/0` conv, `/1` BN) and timm's avg-down
    (`/0` pool, `/1` conv, `/2` BN); a strided 1x1 max-pool alone where only the size changes."""
    if plan.downsample is None:
        if plan.shortcut_pool is None:
            return None
        return Sequential([layers.pool(plan.shortcut_pool)], name="downsample")
    conv, norm = plan.downsample
    path = [layers.conv(conv)] + ([layers.norm(norm)] if norm is not None else [])
    if plan.shortcut_pool is not None:  # avg-down at stride 2 (at stride 1 torch's index 0 is an Identity)
        path.insert(0, layers.pool(plan.shortcut_pool))
    return Sequential(path, name="downsample")


def make_stem_conv(plan: StemPlan, layers: Layers = LAYERS) -> keras.layers.Layer:
    """`conv1`: one conv, or the deep stem's Sequential [conv, bn, relu, conv, bn, relu, conv] named as
    timm's indices, each conv with its padding in front (`0_pad`)."""
    if not plan.deep:
        return layers.conv(plan.conv)
    path: list[keras.layers.Layer] = []
    for conv, norm in plan.inner:  # timm's Sequential: conv i, norm i + 1, relu i + 2
        path += [layers.pad(conv), layers.conv(conv), layers.norm(norm)]
        path.append(keras.layers.ReLU(name=str(int(local_name(conv)) + 2)))
    path += [layers.pad(plan.convs[-1]), layers.conv(plan.convs[-1])]
    return Sequential(path, name="conv1")


def make_pool_pad(plan: PoolPlan | None, after_relu: bool, layers: Layers = LAYERS) -> keras.layers.Layer:
    """The stem max-pool's padding: `layers.pad`'s zeros, or -inf where the pool sees values below zero."""
    if plan is None:
        return keras.layers.Identity()
    # FRAMEWORK: max-pool padding — after a ReLU a zero pad never wins, so Keras' ZeroPadding2D equals
    # torch's -inf; a pre-activation stem feeds the pool raw conv outputs, so -inf must be written out.
    if plan.fill == "-inf" and not after_relu and plan.padding and not plan.same:
        return NegInfPadding2D(plan.padding, name="maxpool_pad")
    return layers.pad(plan)


@keras.saving.register_keras_serializable(package="resnet_keras")
class ResNet(keras.Model):
    """A ResNet whose variables map to torchvision's state_dict keys by rule.

    Args:
        spec: the architecture; see `parity.spec.make_spec`.
        layers: the factories to build with (`resnet_keras.layers.LAYERS`; another set builds a variant).
        **kwargs: passed to `keras.Model` (name, dtype, trainable).
    """

    def __init__(self, spec: ResNetSpec, layers: Layers = LAYERS, **kwargs):
        kwargs.setdefault("name", "resnet")
        super().__init__(**kwargs)
        if not isinstance(spec, ResNetSpec):
            raise TypeError(f"spec must be a ResNetSpec, got {type(spec).__name__}")
        self.spec = spec
        stem = spec.stem_plan()
        head = spec.head_plan()
        self.pad1 = layers.pad(stem.conv) if not stem.deep else keras.layers.Identity(name="conv1_pad")
        self.conv1 = make_stem_conv(stem, layers)
        if stem.last_norm is not None:  # a pre-activation network's first bn is its first block's bn1
            self.bn1 = layers.norm(stem.last_norm)
        self.relu = keras.layers.ReLU()
        self.maxpool_pad = make_pool_pad(stem.pool, after_relu=not spec.preact, layers=layers)
        self.maxpool = layers.pool(stem.pool) if stem.pool is not None else keras.layers.Identity()
        block = PreActBlock if spec.preact else Block
        for index, plans in enumerate(spec.stage_blocks()):
            # torchvision's `layer1` .. `layer4` attributes, each a Sequential of blocks.
            blocks = [block(plan, layers) for plan in plans]
            setattr(self, f"layer{index + 1}", Sequential(blocks, name=f"layer{index + 1}"))
        if head.norm is not None:
            self.post_bn = layers.norm(head.norm)
        self.avgpool = layers.global_pool(head)
        self.flatten = keras.layers.Flatten()
        self.fc = layers.fc(head) if head.out_features else keras.layers.Identity(name="fc")
        # FRAMEWORK: variables — torch creates them in __init__; Keras waits for an input shape.
        # The spec knows the channels, so build now and the model is usable at once, like torch's.
        # FRAMEWORK: symbolic shapes — JAX's shape inference cannot prove that the avg-down pool's ceil(n / 2)
        # equals the strided conv's (n - 1) // 2 + 1 for an unknown n; there the build traces one concrete
        # size (the variables do not depend on it, and any size runs afterwards).
        spatial = 2 * spec.total_stride + 1 if spec.avg_down and keras.backend.backend() == "jax" else None
        self.build((None, spatial, spatial, spec.in_channels))

    def build(self, input_shape) -> None:
        # A symbolic run through forward_stages builds every layer (no computation happens).
        self.forward_stages(keras.KerasTensor(tuple(input_shape)))
        self.built = True

    @property
    def stages(self) -> list[Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.spec.layers))]

    def check_input(self, x) -> None:
        """Raise ValueError unless x is a float tensor (N, H, W, in_channels)."""
        if len(x.shape) != 4 or x.shape[CHANNEL_AXIS] != self.spec.in_channels:
            raise ValueError(f"expected input of shape (N, H, W, {self.spec.in_channels}) (NHWC), got {tuple(x.shape)}")
        dtype = keras.backend.standardize_dtype(x.dtype)
        if "float" not in dtype:
            raise ValueError(
                f"expected a float input, got {dtype}: convert and normalise images first "
                "(e.g. x.astype('float32') / 255, then the mean/std the weights were trained with)"
            )

    def forward_stem(self, x, training=None):
        """conv1 -> bn1 -> relu -> maxpool (no bn1 and relu in a pre-activation network)."""
        out = self.pad1(x)
        out = self.conv1(out, training=training) if isinstance(self.conv1, Sequential) else self.conv1(out)
        if not self.spec.preact:
            out = self.bn1(out, training=training)
            out = self.relu(out)
        out = self.maxpool_pad(out)
        out = self.maxpool(out)
        return out

    def forward_features(self, x, training=None):
        """The backbone's output map: the last stage, after the final BN-ReLU of a pre-activation network."""
        out = x
        if self.spec.preact:
            out = self.post_bn(out, training=training)
            out = self.relu(out)
        return out

    def forward_head(self, x, training=None):
        """(post_bn -> relu) -> global pool -> fc: the last stage's map to logits (or features)."""
        out = self.forward_features(x, training=training)
        if self.spec.pooling is None:
            return out
        out = self.avgpool(out)
        out = self.flatten(out)
        out = self.fc(out)
        return out

    def forward_stages(self, x, training=None) -> OrderedDict[str, object]:
        """Run the network and return every stage output: stem, layer1.., logits (NHWC)."""
        self.check_input(x)
        outputs = OrderedDict()
        out = self.forward_stem(x, training=training)
        outputs["stem"] = out
        for index, stage in enumerate(self.stages):
            out = stage(out, training=training)
            outputs[f"layer{index + 1}"] = out
        out = self.forward_head(out, training=training)
        outputs[self.spec.output_name] = out
        return outputs

    def call(self, x, training=None):
        return self.forward_stages(x, training=training)[self.spec.output_name]

    def get_config(self) -> dict:
        # FRAMEWORK: serialisation — Keras rebuilds a model from its config; the spec is all of it.
        config = {"name": self.name, "trainable": self.trainable, "spec": self.spec.to_dict()}
        return config

    @classmethod
    def from_config(cls, config: dict) -> ResNet:
        config = dict(config)
        spec = ResNetSpec.from_dict(config.pop("spec"))
        config.pop("dtype", None)
        return cls(spec, **config)
