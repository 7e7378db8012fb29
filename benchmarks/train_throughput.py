"""Training throughput of `resnet-parity train`'s step per backend, beside a bare hand-written torch loop.

    python benchmarks/train_throughput.py [--arch resnet18] [--batch 32] [--size 96] [--steps 20]

All loops train the same model from the same weights on the same real batches (the bundled digits,
resized to --size, through `parity.io.data`). The bare loop is the tutorial's five lines on torch tensors
prepared beforehand, so the gap to `train torch` is what our pipeline and step function cost. Prints
the median seconds per step, images per second and the ratio to the bare loop, all from one run.
"""

from __future__ import annotations

import argparse
import itertools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from parity.backends import adapter_named  # noqa: E402
from parity.checks.bench import median_seconds  # noqa: E402
from parity.io.data import Preprocess, digits  # noqa: E402
from parity.io.pipeline import batches  # noqa: E402
from parity.io.weights import initial_weights, set_weights  # noqa: E402
from parity.spec import make_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    train, _ = digits(args.size)
    spec = make_spec(args.arch, num_classes=10)
    pre = Preprocess(args.size)
    weights = initial_weights(spec, 0)
    results = {}

    for name in ("torch", "keras"):
        side = adapter_named(name)
        model = side.build(spec)
        set_weights(model, weights)
        optimizer = side.make_optimizer(model, "sgd", 0.01, 0.9, 5e-4)
        # The pipeline runs inside the timed step, as it does in `resnet-parity train`.
        data = iter(batches(train, pre, args.batch, 0, 0))

        def step(side=side, model=model, optimizer=optimizer):
            nonlocal data
            try:
                images, labels = next(data)
            except StopIteration:
                data = iter(batches(train, pre, args.batch, 0, 1))
                images, labels = next(data)
            side.train_step(model, optimizer, images, labels)

        results[f"train --backend {name}"] = median_seconds(step, args.warmup, args.steps)

    model = adapter_named("torch").build(spec)
    set_weights(model, weights)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    prepared = [
        (torch.from_numpy(x), torch.from_numpy(y)) for x, y in itertools.islice(batches(train, pre, args.batch), 8)
    ]
    cycle = itertools.cycle(prepared)

    def bare():
        x, y = next(cycle)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    results["bare torch loop"] = median_seconds(bare, args.warmup, args.steps)

    base = results["bare torch loop"]
    print(
        f"{args.arch}, batch {args.batch}, {args.size}x{args.size}, SGD, {torch.get_num_threads()} torch threads; "
        f"median of {args.steps} steps after {args.warmup} warm-up"
    )
    print(f"{'loop':24} {'s/step':>8} {'img/s':>8} {'vs bare':>8}")
    for name, seconds in results.items():
        print(f"{name:24} {seconds:8.3f} {args.batch / seconds:8.1f} {base / seconds:8.2f}")


if __name__ == "__main__":
    main()
