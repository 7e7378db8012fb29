"""Every tolerance the project asserts with, and the measurement behind it.

A tolerance bounds `max |a - b| / max |a|` for each compared stage (stem, layer1.., logits), where
`a` is the reference model. Both models hold the same fp32 weights, so what remains is the rounding
of two different kernel libraries (oneDNN/ATen on the torch side, Eigen/oneDNN under TensorFlow)
summing the same products in different orders.
"""

from __future__ import annotations

FP32_CPU = 1e-5
"""fp32 on CPU, torch eager vs Keras on TensorFlow.

Measured (`python benchmarks/tolerance_scan.py`, 2 cores, torch 2.13.0, TF 2.21.0, Keras 3.15.1): all
five depths at 2x64x64, 2x224x224 and 1x97x131, three weight/input seeds each (45 runs, every stage):
worst 1.63e-6 (resnet152 layer3 at 224), logits worst 1.08e-6, stem 2.3e-7. 1e-5 leaves a 6x margin
over that noise floor, while the smallest inference-time porting mistake we know of (Keras' default BN
eps 1e-3) drifts by 7.2e-4 at the stem and 1.8e-3 on the logits (`resnet-parity lessons`, resnet18 at
64x64): 72x above it.
"""

FP32_CUDA = 1e-5
"""fp32 on CUDA with TF32 off (cuDNN and cuBLAS in full fp32). Held to the CPU figure: with TF32
off, GPU kernels round like CPU ones (fp32 accumulate, different summation order)."""

TF32_CUDA = 1e-2
"""CUDA with TF32 allowed (`--allow-tf32`): convs and matmuls round inputs to a 10-bit mantissa
(relative step 2**-11 ~ 4.9e-4 per product), and 50-150 layers compound it. NVIDIA quotes TF32 as
about 1e-3 relative per op; 1e-2 per stage is that over a deep net. Not measured on this project's
CI machine (no GPU); see the issue notes for the device figures."""


def for_run(device: str, allow_tf32: bool = False) -> tuple[str, float]:
    """(name, value) of the default tolerance for a comparison on `device`."""
    if device == "cuda":
        return ("TF32_CUDA", TF32_CUDA) if allow_tf32 else ("FP32_CUDA", FP32_CUDA)
    return "FP32_CPU", FP32_CPU

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
