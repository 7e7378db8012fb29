"""Inference throughput of the four runtimes on the same model and batch (images per second).

    python benchmarks/throughput.py [--arch resnet50] [--batch 8] [--size 224] [--iters 10]

Prints each runtime's median time per batch, images per second, and the ratio to torch eager, all
measured in one run (the machine is shared: compare ratios, not absolute figures across runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from parity.check import build_pair, random_input  # noqa: E402
from parity.export import export_onnx, onnx_session, run_onnx  # noqa: E402
from parity.spec import make_spec  # noqa: E402
from parity.weights import copy_weights, random_weights, set_weights  # noqa: E402


def timed(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    import keras
    import torch

    spec = make_spec(args.arch)
    torch_model, keras_model = build_pair(spec)
    set_weights(torch_model, random_weights(spec, 0))
    copy_weights(torch_model, keras_model)
    torch_model.eval()
    x = random_input(spec, args.batch, args.size, args.size, 0)
    x_torch = torch.from_numpy(x)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))

    def run_torch():
        with torch.no_grad():
            torch_model(x_torch)

    runs = {"torch eager": run_torch,
            f"keras predict_on_batch ({keras.backend.backend()})": lambda: keras_model.predict_on_batch(x_nhwc)}
    with tempfile.TemporaryDirectory() as folder:
        for label, model in (("torch", torch_model), ("keras", keras_model)):
            path = export_onnx(model, os.path.join(folder, f"{label}.onnx"), nchw=True, height=args.size)
            session = onnx_session(path)
            runs[f"onnxruntime ({label} export)"] = lambda s=session: run_onnx(s, x)
        print(f"{args.arch}, batch {args.batch}, {args.size}x{args.size}, fp32, CPU threads: "
              f"torch {torch.get_num_threads()}; median of {args.iters} after {args.warmup} warm-up")
        base = None
        for label, fn in runs.items():
            seconds = timed(fn, args.warmup, args.iters)
            rate = args.batch / seconds
            base = base or rate
            print(f"  {label:34s} {seconds * 1000:8.1f} ms/batch  {rate:6.1f} img/s  x{rate / base:.2f} vs torch")


if __name__ == "__main__":
    main()
