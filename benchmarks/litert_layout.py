"""What each route to LiteRT writes: op counts, input shape signature, and the row `check --runtime litert` judges.

Run it where each route installs: the project's venv has Keras' own export (`[litert]`); torch -> LiteRT needs
litert-torch (about 2.5 GB with jax and transformers, torch < 2.15), so in a venv of its own:

    python -m venv /tmp/lt && /tmp/lt/bin/pip install litert-torch torch==2.13.0 rich
    PYTHONPATH=. /tmp/lt/bin/python benchmarks/litert_layout.py

Prints, per route that runs here: the ops of the .tflite (TRANSPOSE and PAD are what a layout change costs), its
input shape and shape signature (-1: an open axis), and the row's error against the float64 truth.
"""

from __future__ import annotations

import collections
import importlib.util
import tempfile
from pathlib import Path

from parity.backends import adapter_named
from parity.backends.runtimes import missing, runtime_named
from parity.checks.runtimes import Route, truth
from parity.io.inputs import random_input
from parity.io.weights import random_weights, set_weights
from parity.spec import make_spec


def main() -> None:
    spec = make_spec("resnet18", widths=(8, 16, 32, 64), stem_width=8, num_classes=10)
    weights = random_weights(spec, 0, calibrate=True, size=(64, 64))
    x = random_input(spec, 2, 64, 64, 0)
    line = missing("litert")
    if line:
        raise SystemExit(line)
    runtime = runtime_named("litert")
    from ai_edge_litert.interpreter import Interpreter

    reference = None
    for source in ("torch", "keras"):
        if importlib.util.find_spec(source) is None or runtime.refusal(source):
            print(f"{source} -> LiteRT: not here ({runtime.refusal(source) or source + ' is not installed'})")
            continue
        model = adapter_named(source).build(spec)
        set_weights(model, weights)
        reference = reference or truth(model, x)
        way = Route(runtime, model, via_onnx=False)
        with tempfile.TemporaryDirectory() as folder:
            path = way.export(model, Path(folder), x.shape, unit=False)
            interpreter = Interpreter(model_path=str(path))
            ops = collections.Counter(op["op_name"] for op in interpreter._get_ops_details())
            detail = interpreter.get_input_details()[0]
            judged = reference.judge("logits", way.run(way.load(path, "fp32"), x))
        print(f"{way.text()}: input {detail['shape'].tolist()}, signature {detail['shape_signature'].tolist()}")
        print(f"  ops: {dict(sorted(ops.items()))}")
        print(f"  against the float64 truth: {judged.max_rel:.2e} ({judged.ratio:.2f}x the fp32 noise)")


if __name__ == "__main__":
    main()
