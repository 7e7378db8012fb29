"""How sensitive are SGD training steps to round-off? The basis of TRAIN_STEP_FP64.

For each configuration, trains from identical weights on identical batches and prints the worst
relative difference (over every gradient of every step, and every weight after the last step) of:
  - torch vs Keras (the port),
  - torch vs torch fed the same batches times (1 + noise * N(0, 1)) (the model's own sensitivity),
in float64 and float32. Usage:

    python benchmarks/train_sensitivity.py [--arch resnet18,resnet50] [--steps 3]
"""

from __future__ import annotations

import argparse
import copy
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from parity.checks.train_steps import SGDConfig, make_batches, train_side, training_pair  # noqa: E402
from parity.io.weights import random_weights  # noqa: E402
from parity.spec import make_spec, parse_archs  # noqa: E402

CONFIGS = [(4, 32), (8, 64)]  # (batch, size): layer4 maps of 1x1 and 2x2


def worst(a, b) -> tuple[float, float]:
    grads = max(
        float(np.abs(ga[k] - gb[k]).max() / np.abs(ga[k]).max()) for ga, gb in zip(a.grads, b.grads) for k in ga
    )
    weights = max(float(np.abs(a.weights[k] - b.weights[k]).max() / np.abs(a.weights[k]).max()) for k in a.weights)
    return grads, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18,resnet50")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = SGDConfig()
    print(
        f"{args.steps} SGD steps (lr {config.lr}, momentum {config.momentum}, wd {config.weight_decay}); "
        "worst relative difference: gradients / weights"
    )
    for arch in parse_archs(args.arch):
        spec = make_spec(arch)
        weights = random_weights(spec, args.seed)
        for batch, size in CONFIGS:
            batches = make_batches(spec, args.steps, batch, size, size, args.seed)
            for dtype, noise in (("float64", 1e-15), ("float32", 1e-7)):
                torch_model, keras_model = training_pair(spec, weights, dtype)
                twin = copy.deepcopy(torch_model)
                rng = np.random.default_rng(args.seed)
                nudged = [x * (1 + noise * rng.standard_normal(x.shape)) for x, _ in batches]
                reference = train_side(torch_model, batches, config)
                port = worst(reference, train_side(keras_model, batches, config))
                self_noise = worst(reference, train_side(twin, [(x, y) for x, (_, y) in zip(nudged, batches)], config))
                print(
                    f"  {arch:9s} batch {batch} {size}x{size} {dtype}: torch vs keras "
                    f"{port[0]:.1e} / {port[1]:.1e};  torch vs torch with {noise:.0e} input noise "
                    f"{self_noise[0]:.1e} / {self_noise[1]:.1e}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
