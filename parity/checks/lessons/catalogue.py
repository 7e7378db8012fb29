"""The catalogue: each lesson's title, where it is handled, why it matters and its code on both sides, in the
order the table, the docs page and the plot show them."""

from __future__ import annotations

from collections.abc import Callable

from parity.checks.lessons import families, ports, precision, runtimes, training
from parity.checks.lessons.base import LESSONS, Context, Finding, Lesson


def _lesson(
    key: str,
    title: str,
    handled: str,
    why: str,
    torch_code: str,
    keras_code: str,
    run: Callable[[Context], list[Finding]],
) -> None:
    LESSONS[key] = Lesson(key, title, handled, why, torch_code, keras_code, run)


_lesson(
    "same_padding",
    "stride-2 'same' padding",
    "resnet_keras.layers.make_pad / make_conv",
    "TensorFlow's 'same' pads (k - s) rows in total and puts the odd one at the bottom/right; torch "
    "pads `padding` rows on both sides. They agree only when the input of every stride-2 op is odd.",
    "resnet_torch.layers:make_conv",
    "resnet_keras.layers:make_pad",
    ports.run_same_padding,
)
_lesson(
    "maxpool_padding",
    "max-pool padding: -inf vs zeros",
    "resnet_keras.layers.make_pool",
    "torch pads a max-pool with -inf; Keras has only zero padding (or 'same'). After a ReLU every input "
    "is >= 0, so a zero never beats a real value and the two agree exactly.",
    "resnet_torch.layers:make_pool",
    "resnet_keras.layers:make_pool",
    ports.run_maxpool_padding,
)
_lesson(
    "bn_eps",
    "BatchNorm epsilon",
    "parity.spec (bn_eps) -> make_norm",
    "Keras' default epsilon is 1e-3, torch's 1e-5; every BN divides by sqrt(var + eps).",
    "resnet_torch.layers:make_norm",
    "resnet_keras.layers:make_norm",
    ports.run_bn_eps,
)
_lesson(
    "bn_momentum",
    "BatchNorm momentum convention",
    "resnet_keras.layers.make_norm",
    "torch's momentum is the weight of the new batch (0.1), Keras' the weight of the old value (0.9). "
    "Inference is unaffected until a training step updates the running statistics.",
    "resnet_torch.layers:make_norm",
    "resnet_keras.layers:make_norm",
    training.run_bn_momentum,
)
_lesson(
    "bn_variance",
    "running variance: unbiased vs biased",
    "resnet_keras.layers.BatchNorm",
    "Both normalise a training batch with its biased variance, but torch updates running_var with the "
    "unbiased one (x n/(n-1)); stock Keras uses the biased one. Small batches or maps make n small.",
    "resnet_torch.layers:make_norm",
    "resnet_keras.layers:BatchNorm",
    training.run_bn_variance,
)
_lesson(
    "weight_decay",
    "SGD weight decay: coupled vs decoupled",
    "resnet_keras.train.CoupledDecay",
    "torch's SGD adds weight_decay * w to the gradient, so decay goes through momentum; Keras' "
    "SGD(weight_decay=...) shrinks the weights directly.",
    "resnet_torch.train:make_optimizer",
    "resnet_keras.train:CoupledDecay",
    training.run_weight_decay,
)
_lesson(
    "adam_epsilon",
    "Adam: epsilon placement and default",
    "resnet_keras.train.Adam",
    "torch divides the second moment by its bias correction before adding eps; Keras folds both "
    "corrections into the step size and adds eps to sqrt(v), so its eps acts sqrt(1 - beta2^t) times "
    "smaller (31.6x at step 1). Keras' default eps is also 1e-7, torch's 1e-8.",
    "resnet_torch.train:make_optimizer",
    "resnet_keras.train:Adam",
    training.run_adam_epsilon,
)
_lesson(
    "weight_layout",
    "conv weight layout OIHW vs HWIO",
    "parity.core.layout.keras_layout / torch_layout",
    "torch stores conv weights (out, in, kh, kw), Keras (kh, kw, in, out); a reshape keeps the shape "
    "right and the numbers wrong. Only a transpose moves each weight to its place.",
    "parity.core.layout:torch_layout",
    "parity.core.layout:keras_layout",
    ports.run_weight_layout,
)
_lesson(
    "flatten_order",
    "NCHW vs NHWC flatten order",
    "resnet_*/model.py forward_stages (pool, then flatten)",
    "Flattening (C, H, W) and (H, W, C) orders the same features differently, so an fc weight trained "
    "on one is scrambled on the other. ResNet pools to 1x1 first, where the order no longer matters; a "
    "flattening head needs its weight columns permuted.",
    "resnet_torch.model:ResNet.forward_stages",
    "parity.core.layout:flatten_weight_nchw_to_nhwc",
    ports.run_flatten_order,
)
_lesson(
    "initializers",
    "default initialisers",
    "resnet_keras.layers.make_conv / make_fc",
    "torchvision draws conv weights from kaiming normal (fan_out) and fc weights from U(+-1/sqrt(in)); "
    "Keras defaults to Glorot uniform and zero biases. Ported weights are unaffected; training from "
    "scratch starts elsewhere.",
    "resnet_torch.model:ResNet.init_weights",
    "resnet_keras.layers:make_conv",
    ports.run_initializers,
)
_lesson(
    "train_eval",
    "train / eval flag",
    "parity.backends.<framework>.run: run_stages",
    "In training mode BatchNorm uses the batch's statistics instead of the running ones. torch keeps a "
    "mode on the module (model.eval()); Keras takes training= on every call.",
    "parity.backends.torch.run:TorchRun.run_stages",
    "parity.backends.keras.run:KerasRun.run_stages",
    ports.run_train_eval,
)
_lesson(
    "tf32",
    "TF32 on NVIDIA GPUs",
    "parity.checks.compare.precision",
    "Ampere+ GPUs may run fp32 convs and matmuls in TF32 (10-bit mantissa). torch, TF, JAX and "
    "onnxruntime each have their own switch and default.",
    "parity.backends.torch.run:TorchRun.tf32",
    "parity.backends.keras.run:KerasRun.tf32",
    ports.run_tf32,
)
_lesson(
    "maxpool_nan",
    "max-pool and NaN",
    "parity.checks.compare.StageDiff (NaN masks compared)",
    "torch's max-pool propagates a NaN; TensorFlow's max-pool drops it. Not a porting error: a NaN input "
    "is reported as a mismatch at the stem, with the NaN counts.",
    "resnet_torch.layers:make_pool",
    "resnet_keras.layers:make_pool",
    ports.run_maxpool_nan,
)

_lesson(
    "avg_pool_edge",
    "average pool at an odd edge (ResNet-D)",
    "resnet_keras.layers.make_pool",
    "ResNet-D's shortcut averages 2x2 before its 1x1 conv. timm writes AvgPool2d(2, 2, ceil_mode=True, "
    "count_include_pad=False): an odd last row is a window of its own, averaged over its real cells. Keras' "
    "AveragePooling2D defaults to 'valid', which drops that row; 'same' averages it as torch does.",
    "resnet_torch.layers:make_pool",
    "resnet_keras.layers:make_pool",
    families.run_avg_pool_edge,
)
_lesson(
    "subsample_shortcut",
    "V2's strided 1x1 max-pool shortcut",
    "parity.spec (shortcut='subsample') -> make_downsample",
    "keras.applications' ResNet V2 strides in a stage's last block, whose identity is MaxPooling2D(1, 2): "
    "it keeps every other pixel, no weights. Written as a 2x2 average (ResNet-D's pool) it still runs, "
    "with other numbers.",
    "resnet_torch.model:make_downsample",
    "resnet_keras.model:make_downsample",
    families.run_subsample_shortcut,
)
_lesson(
    "v2_stride",
    "where ResNet V2 strides",
    "parity.spec (stride_at) -> block_plans",
    "keras.applications' V2 strides in each stage's last block (none in the last stage); torchvision, timm "
    "and keras-hub stride in the first. Every weight has the same shape either way: a V2 file loads into "
    "the other layout silently and computes another function.",
    "parity.spec.planner:SpecPlans._block_stride",
    "parity.spec.planner:SpecPlans._block_stride",
    families.run_v2_stride,
)
_lesson(
    "openvino_precision",
    "OpenVINO's default precision on the CPU",
    "parity.backends.runtimes.openvino_ir.OpenVINO.load (INFERENCE_PRECISION_HINT=f32, and the default reported)",
    "OpenVINO's CPU plugin computes in bf16 unless told otherwise on CPUs with AVX512-BF16 or AMX (8 mantissa bits: "
    "about 4e-3 per rounding), with no warning; `check --runtime openvino` asks for f32 and says what the default "
    "would have given.",
    "parity.backends.torch.export:TorchExport.export_program",
    "parity.backends.runtimes.openvino_ir:OpenVINO.load",
    runtimes.run_openvino_precision,
)
_lesson(
    "litert_batch",
    "LiteRT's batch axis",
    "parity.backends.keras.export.KerasExport.export_format (an open NHWC signature); probed by check --runtime",
    "A .tflite graph's input shape is fixed unless its signature leaves the axis open (shape_signature -1); a graph "
    "fixed to batch 1 refuses other batches at resize. `check --runtime` runs every file at batch 1 and 3.",
    "parity.checks.runtimes:probe_shapes",
    "parity.backends.keras.export:KerasExport.export_format",
    runtimes.run_litert_batch,
)
_lesson(
    "aoti_range",
    "AOTInductor's input range",
    "parity.checks.runtimes.probe_shapes (each file run at batch 1, 3 and two other sizes, judged)",
    "torch.export bounds each dynamic axis where the example input makes a map 1x1 (a size-1 axis broadcasts), and "
    "an AOTInductor package does not check its input against that range: outside it, it runs and computes garbage.",
    "parity.backends.torch.export:TorchExport.export_program",
    "parity.checks.runtimes:probe_shapes",
    runtimes.run_aoti_range,
)
_lesson(
    "fp16_overflow",
    "fp16's range",
    "parity.checks.precision.fp16_overflow (the first layer beyond 65,504 named from the float64 truth)",
    "fp16 keeps 10 mantissa bits but only 5 exponent bits: nothing beyond 65,504. A conv whose BatchNorm scales it back "
    "down (a checkpoint's statistics absorb any scale) overflows to inf in fp16 and the logits turn NaN; bf16 has "
    "fp32's range. onnxruntime's fp16 graph folds BatchNorm into the conv first, so that sum never exists there.",
    "parity.backends.torch.run:TorchRun.low_precision",
    "parity.backends.keras.run:KerasRun.low_precision",
    precision.run_fp16_overflow,
)
_lesson(
    "bn_bf16",
    "BatchNorm in bf16",
    "parity.backends.*.low_precision (torch autocast; Keras' mixed policy): bf16 compute over fp32 weights",
    "Casting the whole model to bf16 rounds BatchNorm's running statistics and parameters to 8 mantissa bits too; "
    "autocast and a mixed policy keep them fp32 and round only what convolutions compute.",
    "parity.backends.torch.run:TorchRun.low_precision",
    "parity.backends.keras.run:KerasRun.low_precision",
    precision.run_bn_bf16,
)
_lesson(
    "int8_granularity",
    "int8 weights: per tensor vs per channel",
    "parity.backends.runtimes.ort.OnnxRuntime.lower (QDQ, per_channel=True)",
    "One int8 scale per weight tensor must cover its largest output channel, so channels with small weights keep a "
    "few levels; per-channel scales give each output channel all 255 levels.",
    "parity.backends.runtimes.ort:OnnxRuntime.lower",
    "parity.backends.runtimes.ort:OnnxRuntime.lower",
    precision.run_int8_granularity,
)
_lesson(
    "int8_ends",
    "int8: the first and last layers",
    "parity.backends.runtimes.ort.OnnxRuntime.lower (every layer int8 by default, as torchvision's quantized ResNets)",
    "The first convolution sees the raw image and the fc writes the logits directly; keeping them in fp32 is a "
    "common remedy, measured here against quantising every layer.",
    "parity.backends.runtimes.ort:OnnxRuntime.lower",
    "parity.backends.runtimes.ort:OnnxRuntime.lower",
    precision.run_int8_ends,
)
_lesson(
    "mixed_vs_autocast",
    "Keras' mixed policy vs torch autocast: BatchNorm",
    "parity.backends.*.low_precision: each framework's own mode, judged by the same rule",
    "torch autocast lists the ops it lowers (convolutions, linear) and leaves BatchNorm to its input's dtype, bf16 "
    "after a lowered conv; Keras' mixed policy runs every layer in bf16 but BatchNormalization's arithmetic in "
    "float32. Both round BatchNorm's output to bf16.",
    "parity.backends.torch.run:TorchRun.low_precision",
    "parity.backends.keras.run:KerasRun.low_precision",
    precision.run_mixed_vs_autocast,
)
