"""ResNet as a subclassed Keras 3 `keras.Model`, built from a `parity.spec.ResNetSpec`.

Read side by side with `resnet_torch/model.py`: same classes, same method order, same local names.
Every intentional difference is tagged `# FRAMEWORK:`. Helper layers live in `resnet_keras/layers.py`.
Only `keras.layers` / `keras.ops` are used,
so the model runs under the TensorFlow, PyTorch and JAX Keras backends.

Layer names nest like torchvision's modules (`layer2` > `0` > `downsample` > `0`), so a variable
path `resnet/layer2/0/downsample/0/kernel` maps to the key `layer2.0.downsample.0.weight` by rule.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import keras

from parity.spec import BlockPlan, ConvPlan, HeadPlan, NormPlan, PoolPlan, ResNetSpec, StemPlan
from resnet_keras.layers import (
    CHANNEL_AXIS,
    BatchNorm,
    Dense,
    GlobalAveragePooling,
    NegInfPadding2D,
    Sequential,
)

DATA_FORMAT = "channels_last"


def local_name(plan: ConvPlan | NormPlan | PoolPlan | HeadPlan) -> str:
    """The Keras layer name of a plan: the last part of its canonical name."""
    # FRAMEWORK: naming — torch names a child by attribute or Sequential index and joins the path
    # with '.'; Keras joins layer names with '/' and (under its torch backend) refuses '.' in them.
    # So `downsample.0` is the layer `0` inside the Sequential `downsample`.
    return plan.name.rsplit(".", 1)[-1]


def make_conv(plan: ConvPlan) -> keras.layers.Conv2D:
    """A conv with torchvision's init (kaiming normal, fan_out, relu gain)."""
    # FRAMEWORK: padding — 'valid' here with the symmetric padding a separate layer (`make_pad`),
    # because TF's 'same' on a strided conv puts the odd pixel bottom/right, torch pads symmetrically;
    # 'same' only where the spec asks for TF's padding.
    # FRAMEWORK: init — kaiming_normal_(fan_out, relu) is VarianceScaling(2, fan_out, untruncated).
    return keras.layers.Conv2D(
        plan.out_channels,
        kernel_size=plan.kernel,
        strides=plan.stride,
        padding="same" if plan.same else "valid",
        use_bias=plan.bias,
        groups=plan.groups,
        data_format=DATA_FORMAT,
        kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
        bias_initializer="zeros",
        name=local_name(plan),
    )


def make_pad(plan: ConvPlan | PoolPlan) -> keras.layers.Layer:
    """Symmetric zero padding in front of a conv or pool; Identity where the plan has none or is 'same'."""
    if plan.padding == 0 or plan.same:
        return keras.layers.Identity(name=f"{local_name(plan)}_pad")
    return keras.layers.ZeroPadding2D(plan.padding, data_format=DATA_FORMAT, name=f"{local_name(plan)}_pad")


def make_pool_pad(plan: PoolPlan | None, after_relu: bool) -> keras.layers.Layer:
    """The stem max-pool's padding: `make_pad`'s zeros, or -inf where the pool sees values below zero."""
    if plan is None:
        return keras.layers.Identity()
    # FRAMEWORK: max-pool padding — after a ReLU a zero pad never wins, so Keras' ZeroPadding2D equals
    # torch's -inf; a pre-activation stem feeds the pool raw conv outputs, so -inf must be written out.
    if plan.fill == "-inf" and not after_relu and plan.padding and not plan.same:
        return NegInfPadding2D(plan.padding, name="maxpool_pad")
    return make_pad(plan)


def make_norm(plan: NormPlan) -> keras.layers.BatchNormalization:
    """BatchNorm with the spec's eps; momentum converted from PyTorch's convention."""
    # FRAMEWORK: BN momentum — torch: running = (1 - m) * running + m * batch;
    # Keras: moving = m' * moving + (1 - m') * batch. So m' = 1 - m (0.1 -> 0.9).
    return BatchNorm(
        axis=CHANNEL_AXIS,
        epsilon=plan.eps,
        momentum=1.0 - plan.momentum,
        gamma_initializer="zeros" if plan.zero_init else "ones",
        name=local_name(plan),
    )


def make_pool(plan: PoolPlan) -> keras.layers.Layer:
    if plan.kind == "avg":
        # FRAMEWORK: average pool edge — TF's 'same' keeps the odd row/column as a window of its own and
        # averages only its real cells, as torch's ceil_mode=True, count_include_pad=False; 'valid' drops it.
        return keras.layers.AveragePooling2D(
            plan.kernel, plan.stride, padding="same", data_format=DATA_FORMAT, name=local_name(plan)
        )
    # FRAMEWORK: max-pool padding — Keras pads with zeros (`make_pad`), torch with -inf. The pool
    # follows a ReLU, so every input is >= 0 and a zero never wins over a real value.
    # With TF's 'same' the pool ignores padded cells, as torch's -inf does.
    return keras.layers.MaxPooling2D(
        pool_size=plan.kernel,
        strides=plan.stride,
        padding="same" if plan.same else "valid",
        data_format=DATA_FORMAT,
        name=local_name(plan),
    )


def make_global_pool(plan: HeadPlan) -> keras.layers.Layer:
    """The head's global pool: average, max, or none for a backbone."""
    # FRAMEWORK: pooling — keepdims so the flatten below reads like torch's.
    if plan.pooling is None:
        return keras.layers.Identity()
    if plan.pooling == "avg":
        return GlobalAveragePooling(data_format=DATA_FORMAT, keepdims=True)
    return keras.layers.GlobalMaxPooling2D(data_format=DATA_FORMAT, keepdims=True)


def make_fc(plan: HeadPlan) -> keras.layers.Dense:
    # FRAMEWORK: init — nn.Linear's default is U(-1/sqrt(in), 1/sqrt(in)) for weight and bias;
    # Keras' default is Glorot uniform and zero bias.
    bound = 1.0 / math.sqrt(plan.in_features)
    return Dense(
        plan.out_features,
        kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        name=local_name(plan),
    )


class BasicBlock(keras.layers.Layer):
    """Two 3x3 convs and a residual connection (ResNet-18/34).

    Args:
        plan: the block's `BlockPlan` from the spec.
    """

    expansion = 1

    def __init__(self, plan: BlockPlan, **kwargs):
        super().__init__(name=str(plan.index), **kwargs)
        self.pad1 = make_pad(plan.convs[0])
        self.conv1 = make_conv(plan.convs[0])
        self.bn1 = make_norm(plan.norms[0])
        self.relu = keras.layers.ReLU()
        self.pad2 = make_pad(plan.convs[1])
        self.conv2 = make_conv(plan.convs[1])
        self.bn2 = make_norm(plan.norms[1])
        self.downsample = make_downsample(plan)
        self.relu_before_add = plan.relu_before_add

    def call(self, x, training=None):
        identity = x
        out = self.pad1(x)
        out = self.conv1(out)
        out = self.bn1(out, training=training)
        out = self.relu(out)
        out = self.pad2(out)
        out = self.conv2(out)
        out = self.bn2(out, training=training)
        if self.relu_before_add:
            out = self.relu(out)
        if self.downsample is not None:
            identity = self.downsample(x, training=training)
        out = out + identity
        out = self.relu(out)
        return out


class Bottleneck(keras.layers.Layer):
    """1x1 reduce, 3x3, 1x1 expand, and a residual connection (ResNet-50/101/152).

    Args:
        plan: the block's `BlockPlan` from the spec (it says which conv carries the stride).
    """

    expansion = 4

    def __init__(self, plan: BlockPlan, **kwargs):
        super().__init__(name=str(plan.index), **kwargs)
        self.pad1 = make_pad(plan.convs[0])
        self.conv1 = make_conv(plan.convs[0])
        self.bn1 = make_norm(plan.norms[0])
        self.pad2 = make_pad(plan.convs[1])
        self.conv2 = make_conv(plan.convs[1])
        self.bn2 = make_norm(plan.norms[1])
        self.pad3 = make_pad(plan.convs[2])
        self.conv3 = make_conv(plan.convs[2])
        self.bn3 = make_norm(plan.norms[2])
        self.relu = keras.layers.ReLU()
        self.downsample = make_downsample(plan)
        self.relu_before_add = plan.relu_before_add

    def call(self, x, training=None):
        identity = x
        out = self.pad1(x)
        out = self.conv1(out)
        out = self.bn1(out, training=training)
        out = self.relu(out)
        out = self.pad2(out)
        out = self.conv2(out)
        out = self.bn2(out, training=training)
        out = self.relu(out)
        out = self.pad3(out)
        out = self.conv3(out)
        out = self.bn3(out, training=training)
        if self.relu_before_add:
            out = self.relu(out)
        if self.downsample is not None:
            identity = self.downsample(x, training=training)
        out = out + identity
        out = self.relu(out)
        return out


class PreActBasicBlock(keras.layers.Layer):
    """BN-ReLU before each of two 3x3 convs (ResNet V2); a projection reads the pre-activated input.

    Args:
        plan: the block's `BlockPlan` from the spec (`preact` True).
    """

    expansion = 1

    def __init__(self, plan: BlockPlan, **kwargs):
        super().__init__(name=str(plan.index), **kwargs)
        self.bn1 = make_norm(plan.norms[0])
        self.pad1 = make_pad(plan.convs[0])
        self.conv1 = make_conv(plan.convs[0])
        self.bn2 = make_norm(plan.norms[1])
        self.pad2 = make_pad(plan.convs[1])
        self.conv2 = make_conv(plan.convs[1])
        self.relu = keras.layers.ReLU()
        self.downsample = make_downsample(plan)
        self.project = plan.downsample is not None

    def call(self, x, training=None):
        identity = x
        out = self.bn1(x, training=training)
        out = self.relu(out)
        if self.project:
            identity = self.downsample(out, training=training)
        elif self.downsample is not None:
            identity = self.downsample(x, training=training)
        out = self.pad1(out)
        out = self.conv1(out)
        out = self.bn2(out, training=training)
        out = self.relu(out)
        out = self.pad2(out)
        out = self.conv2(out)
        out = out + identity
        return out


class PreActBottleneck(keras.layers.Layer):
    """BN-ReLU before each of the 1x1, 3x3, 1x1 convs (ResNet V2); a projection reads the pre-activated input.

    Args:
        plan: the block's `BlockPlan` from the spec (`preact` True).
    """

    expansion = 4

    def __init__(self, plan: BlockPlan, **kwargs):
        super().__init__(name=str(plan.index), **kwargs)
        self.bn1 = make_norm(plan.norms[0])
        self.pad1 = make_pad(plan.convs[0])
        self.conv1 = make_conv(plan.convs[0])
        self.bn2 = make_norm(plan.norms[1])
        self.pad2 = make_pad(plan.convs[1])
        self.conv2 = make_conv(plan.convs[1])
        self.bn3 = make_norm(plan.norms[2])
        self.pad3 = make_pad(plan.convs[2])
        self.conv3 = make_conv(plan.convs[2])
        self.relu = keras.layers.ReLU()
        self.downsample = make_downsample(plan)
        self.project = plan.downsample is not None

    def call(self, x, training=None):
        identity = x
        out = self.bn1(x, training=training)
        out = self.relu(out)
        if self.project:
            identity = self.downsample(out, training=training)
        elif self.downsample is not None:
            identity = self.downsample(x, training=training)
        out = self.pad1(out)
        out = self.conv1(out)
        out = self.bn2(out, training=training)
        out = self.relu(out)
        out = self.pad2(out)
        out = self.conv2(out)
        out = self.bn3(out, training=training)
        out = self.relu(out)
        out = self.pad3(out)
        out = self.conv3(out)
        out = out + identity
        return out


BLOCKS = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): Bottleneck,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneck,
}


def make_downsample(plan: BlockPlan) -> Sequential | None:
    """The identity path, named as torchvision (`downsample/0` conv, `/1` BN) and timm's avg-down
    (`/0` pool, `/1` conv, `/2` BN); a strided 1x1 max-pool alone where only the size changes."""
    if plan.downsample is None and plan.shortcut_pool is None:
        return None
    if plan.downsample is None:
        return Sequential([make_pool(plan.shortcut_pool)], name="downsample")
    conv, norm = plan.downsample
    layers = [make_conv(conv)] + ([make_norm(norm)] if norm is not None else [])
    if plan.shortcut_pool is not None:  # avg-down at stride 2 (at stride 1 torch's index 0 is an Identity)
        layers.insert(0, make_pool(plan.shortcut_pool))
    return Sequential(layers, name="downsample")


def make_stem_conv(plan: StemPlan) -> keras.layers.Layer:
    """`conv1`: one conv, or the deep stem's Sequential [conv, bn, relu, conv, bn, relu, conv] named as
    timm's indices, each conv with its padding in front (`0_pad`)."""
    if not plan.deep:
        return make_conv(plan.conv)
    layers: list[keras.layers.Layer] = []
    for index, (conv, norm) in enumerate(zip(plan.convs, plan.norms)):
        layers += [make_pad(conv), make_conv(conv)]
        if index < len(plan.convs) - 1:  # timm's Sequential: conv i, norm i + 1, relu i + 2
            layers += [make_norm(norm), keras.layers.ReLU(name=str(int(local_name(conv)) + 2))]
    return Sequential(layers, name="conv1")


@keras.saving.register_keras_serializable(package="resnet_keras")
class ResNet(keras.Model):
    """A ResNet whose variables map to torchvision's state_dict keys by rule.

    Args:
        spec: the architecture; see `parity.spec.make_spec`.
        **kwargs: passed to `keras.Model` (name, dtype, trainable).
    """

    def __init__(self, spec: ResNetSpec, **kwargs):
        kwargs.setdefault("name", "resnet")
        super().__init__(**kwargs)
        if not isinstance(spec, ResNetSpec):
            raise TypeError(f"spec must be a ResNetSpec, got {type(spec).__name__}")
        self.spec = spec
        stem = spec.stem_plan()
        head = spec.head_plan()
        self.pad1 = make_pad(stem.conv) if not stem.deep else keras.layers.Identity(name="conv1_pad")
        self.conv1 = make_stem_conv(stem)
        if not spec.preact:  # a pre-activation network's first bn is its first block's bn1
            self.bn1 = make_norm(stem.norms[-1])
        self.relu = keras.layers.ReLU()
        self.maxpool_pad = make_pool_pad(stem.pool, after_relu=not spec.preact)
        self.maxpool = make_pool(stem.pool) if stem.pool is not None else keras.layers.Identity()
        for index, plans in enumerate(spec.stage_blocks()):
            # torchvision's `layer1` .. `layer4` attributes, each a Sequential of blocks.
            blocks = [BLOCKS[plan.kind, plan.preact](plan) for plan in plans]
            setattr(self, f"layer{index + 1}", Sequential(blocks, name=f"layer{index + 1}"))
        if head.norm is not None:
            self.post_bn = make_norm(head.norm)
        self.avgpool = make_global_pool(head)
        self.flatten = keras.layers.Flatten()
        self.fc = make_fc(head) if head.out_features else keras.layers.Identity(name="fc")
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
