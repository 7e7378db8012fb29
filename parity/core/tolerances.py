"""Every tolerance the project asserts with, and the measurement behind it.

A tolerance bounds `max |a - b| / max |a|` for each compared stage (stem, layer1.., logits), where
`a` is the reference model. Both models hold the same fp32 weights, so what remains is the rounding
of two different kernel libraries (oneDNN/ATen on the torch side, Eigen/oneDNN under TensorFlow)
summing the same products in different orders.
"""

from __future__ import annotations

SCAN = (
    "`python benchmarks/tolerance_scan.py`: 2 cores, torch 2.13.0, TF 2.21.0, Keras 3.15.1; all five depths "
    "at 2x64x64, 2x224x224 and 1x97x131, three seeds, both directions (90 comparisons), every network "
    "with BN statistics calibrated on data (`random_weights(calibrate=True)`)"
)

FP64 = 1e-10
"""The port verdict: both models in float64 on the same (fp32) weights, every stage and every unit alone.

Measured (SCAN): worst 3.65e-12 (resnet152 at 224), resnet18 1.4e-14, resnet50 1.6e-13. 1e-10 leaves a
27x margin; a port mistake is far above it whatever the weights: one conv channel scaled by 1.0001
shows 4.6e-5 at that layer, Keras' default BN eps 1e-3 per cent-level (`resnet-parity lessons`).
"""

FP32_NOISE_MULTIPLE = 5.0
"""The fp32 verdict: b's fp32 output may differ from a's by this many times a's own fp32 rounding
(a's fp32 output against its float64 output, same max-rel measure, per stage).

Measured (SCAN): the ratio was at most 2.63 (resnet34 at 224; typically 0.8 to 1.3, the largest at
shallow depths where the noise itself is small), while the noise spans 3 orders of magnitude with
depth (logits: resnet18 3.5e-6, resnet50 4.2e-5, resnet152 6.7e-4). 5 leaves a 1.9x margin.
"""

LOW_PRECISION_MULTIPLE = FP32_NOISE_MULTIPLE
"""The low-precision verdict (`parity.checks.precision`): the port's error against the float64 truth in bf16, fp16
or int8 may be this many times the reference's own error in that precision on the same engine, at the logits (max
relative error) and at every unit fed the truth's input (relative RMS error). The fp32 rule's multiple, unchanged.

Measured (`python benchmarks/precision_scan.py`, 8 photographs at 224, BatchNorm calibrated on 8 others, both
directions; resnet18: torch/Keras in bf16 and fp16, onnxruntime fp16 and int8, OpenVINO bf16, fp16 and int8; resnet50:
torch/Keras bf16 and fp16, onnxruntime fp16 and int8): a correct port's ratio was at most 1.24 at the logits (resnet18,
Keras mixed_bfloat16 against torch autocast), 1.86 at a unit and 1.82 at a layer (onnxruntime's fp16 graph of the
Keras export against torch's: two graphs, BatchNorm folded in each); the frameworks themselves agree unit by unit to
1.00-1.17 (the head: Keras' Dense vs torch's linear). 5 leaves a 2.7x margin. What it cannot see: a bug below the
precision's own rounding. One output channel scaled by 1.01 is 2.5 bf16 steps: 2.0-4.5x bf16's own error at that
very layer (every conv of resnet18 at 64x64, tried one by one) and 0.04x at the logits, so a bf16 comparison passes
it; in fp16 (20 steps) it is 20-37x at its layer and fails. The float64 port verdict, which every check runs first,
fails it at 1e-10.
"""

FP32_FLOOR = 1e-6
"""Lower bound of the noise-aware fp32 tolerance, where a's rounding happens to be tiny.

Measured (SCAN): the stem (one conv, no depth to amplify) differs by at most 1.8e-7 across backends.
"""

FP32_UNIT = 1e-5
"""Each unit (stem, block, head) alone in fp32, on the reference's input: used only without the float64
pass. No depth compounds here. Measured (SCAN): worst 2.34e-6 (resnet101 layer4 block), 4x margin.
"""

FP32_FIXED = {
    "resnet18": 5e-5,
    "resnet34": 1.5e-4,
    "resnet50": 5e-4,
    "resnet101": 2.5e-3,
    "resnet152": 1.5e-2,
}
"""End-to-end fp32 per stage without the float64 pass (a device without float64, `--no-float64`):
FP32_NOISE_MULTIPLE x the worst reference noise measured at that depth (SCAN: 7.6e-6, 2.5e-5,
9.4e-5, 4.8e-4, 2.5e-3), rounded up. An assumption about the weights: a network that amplifies
rounding more than these calibrated ones needs the float64 pass, and at resnet152's 1.5e-2 an fp32-
only check cannot see a 1e-3 port mistake at all."""

FP32_CPU = 1e-5
"""fp32 on CPU for *uncalibrated* seeded networks (`random_weights(calibrate=False)`: random BN
statistics and a small last gamma per block, which damp noise): the lessons' naive-port verdicts.

Measured (the earlier scan on those networks, 45 runs): worst 1.63e-6 (resnet152 layer3 at 224),
logits worst 1.08e-6. Calibrated networks, like trained ones, round far more (see FP32_FIXED).
"""

FP32_CUDA = 1e-5
"""fp32 on CUDA with TF32 off (cuDNN and cuBLAS in full fp32). Held to the CPU figure: with TF32
off, GPU kernels round like CPU ones (fp32 accumulate, different summation order)."""

TF32_CUDA = 1e-2
"""CUDA with TF32 allowed (`--allow-tf32`): convs and matmuls round inputs to a 10-bit mantissa
(relative step 2**-11 ~ 4.9e-4 per product), and 50-150 layers compound it. NVIDIA quotes TF32 as
about 1e-3 relative per op; 1e-2 per stage is that over a deep net. Not measured on this project's
CI machine (no GPU); see the issue notes for the device figures."""


FIXED_DEPTH = {"resnet18": 18, "resnet34": 34, "resnet50": 50, "resnet101": 101, "resnet152": 152}
"""The depth (weighted layers on the main path, `ResNetSpec.depth`) each FP32_FIXED figure was measured at."""


def for_run(
    device: str, allow_tf32: bool = False, arch: str | None = None, depth: int | None = None
) -> tuple[str, float]:
    """(name, value) of the fixed fp32 tolerance for a comparison on `device` (no float64 pass).

    Args:
        device: "cpu" or "cuda".
        allow_tf32: CUDA with TF32 allowed.
        arch: the architecture's name: a measured depth (FP32_FIXED) is used as is.
        depth: the network's depth (`ResNetSpec.depth`), for any other network (a family, a narrower copy):
            the FP32_FIXED figure measured at the nearest depth (the deeper one on a tie; beyond resnet152,
            resnet152's, the deepest measured). Without either, FP32_CPU.
    """
    if device == "cuda" and allow_tf32:
        return "TF32_CUDA", TF32_CUDA
    if arch in FP32_FIXED:
        return f"FP32_FIXED[{arch}]", FP32_FIXED[arch]
    if depth is not None:
        nearest = min(FIXED_DEPTH, key=lambda name: (abs(FIXED_DEPTH[name] - depth), -FIXED_DEPTH[name]))
        return f"FP32_FIXED[{nearest}] (depth {depth})", FP32_FIXED[nearest]
    return ("FP32_CUDA", FP32_CUDA) if device == "cuda" else ("FP32_CPU", FP32_CPU)


TRAIN_ZERO_FLOOR = 1e-3
"""In the training-step comparison each tensor's difference is divided by at least this fraction of the
largest tensor compared with it (the step's largest gradient; the largest weight). A conv bias followed by
a training-mode BatchNorm (keras.applications' biased convs; every conv bias of a pre-activation network,
whose sums all reach `post_bn`) has a zero gradient up to rounding: BN subtracts whatever constant the bias
adds, and rounding has no relative size. Measured (narrow resnet50 keras_applications and resnet50v2,
35x35, batch 4, first step): those gradients are 3e-18 .. 2e-17 of the largest and differ across backends
by 5e-17 absolute, i.e. 4e-14 of the floor (TRAIN_STEP_FP64 holds with 2500x margin); every other gradient
is at least 4.0e-3 of the largest, above the floor, so still measured against itself (resnet50v2's stem
bias, 1.1e-2, is real: the zero-padded max-pool is not shift invariant)."""

TRAIN_STEP_FP64 = 1e-10
"""Training-step parity in float64: loss, every gradient, every weight and BN running statistic.

Measured (`python benchmarks/train_sensitivity.py`, 3 SGD steps, lr 0.01, momentum 0.9, wd 1e-4) at
the default batch 8 of 64x64: worst 1.1e-14 (resnet18) and 7.1e-14 (resnet50) over every gradient and
weight, the same as torch against itself with 1e-15 input noise (1.0e-14 / 5.4e-14). 1e-10 leaves a
1000x margin; the naive ports of the BN lessons drift by 1e-3 and more.

Why float64: training through ReLU and max-pool kinks and BatchNorm on small batches amplifies
round-off. In float32, torch against *itself* with 1e-7 input noise differs by 4.6e-2 (resnet18) and
1.2 (resnet50) in some gradient after 3 steps at batch 8 of 64x64, about what Keras differs by
(0.45 / 0.76), so no fixed float32 tolerance separates a porting mistake from noise. Smaller maps are worse: at batch 4 of 32x32 (1x1 maps in layer4) even float64 resnet50
drifts 4.7e-8 from Keras and 7.5e-8 from itself.
"""

INIT_STD_REL = 0.05
"""Per-layer weight std of two fresh initialisations drawn from the same distribution.

The std estimated from N draws has a relative standard error of about 1/sqrt(2N): 0.7% for
resnet18's smallest layer (conv1, 9,408 weights), 1.7% for a cifar stem conv (1,728). 5% is 3 to 7
standard errors; Keras' default Glorot uniform misses torchvision's kaiming init by about 30%.
"""

SCALE_FP64 = 1e-10
"""Data parallel against its single-process equivalent (`parity.training.scale`, `resnet-parity scale`) in
float64: worst relative difference of any weight or BN running statistic after each SGD step.

Measured (default check: narrow resnet18, cifar stem, 3 SGD steps, global batch 8 of 16x16, 2 parts, CPU):
torch DDP over 2 gloo processes against one process accumulating the 2 shards: 0.0 (bit-identical);
Keras DataParallel over 2 JAX CPU devices against one device: 5.2e-15. The mistakes it exists to
catch are far above: DDP without SyncBatchNorm against the global batch is 3.1e-2, 6.7e-2, 1.07e-1
apart after steps 1, 2, 3 (||a - b|| / ||a|| of the weights); a gradient summed instead of averaged
doubles every step.
"""

SCALE_FP32 = 1e-4
"""The same in float32 (`--dtype float32`). Measured on the default check: torch 1.9e-6, Keras 3.8e-6
after 3 steps (fp32 reductions in a different order); 26x margin. Like every fixed fp32 figure, an
assumption about the network: deeper nets and more steps amplify rounding (see TRAIN_STEP_FP64)."""


def scale(dtype: str) -> tuple[str, float]:
    """(name, value) of the scale-check tolerance for `dtype` (the same for both engines)."""
    return ("SCALE_FP64", SCALE_FP64) if dtype == "float64" else ("SCALE_FP32", SCALE_FP32)
