"""Measure what the low-precision verdict rests on: a correct port's error as a multiple of the reference's own.

For every architecture, size, precision and engine: both models (this project's torch and Keras ports of one seeded
network, BatchNorm calibrated on the photographs) judged on the photographs by `parity.checks.precision` in both
directions, as `check --precision` judges them; prints each run's ratio at the logits and the worst unit and layer
ratio, and the worst of each. `LOW_PRECISION_MULTIPLE` is set from this. Usage:

    python benchmarks/precision_scan.py [--arch resnet18,resnet50] [--size 224] [--engines frameworks,onnxruntime]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from parity.checks.check import build_pair, default_weights  # noqa: E402
from parity.checks.engines import RUNTIME_PRECISIONS, refusal  # noqa: E402
from parity.checks.precision import precision_rows  # noqa: E402
from parity.io.photos import CALIBRATION, JUDGED, photo_inputs  # noqa: E402
from parity.io.weights import copy_weights, set_weights  # noqa: E402
from parity.spec import make_spec, parse_archs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18,resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=8, help="judged (and calibration) photographs")
    parser.add_argument("--precisions", default="bf16,fp16,int8")
    parser.add_argument("--engines", default="frameworks," + ",".join(RUNTIME_PRECISIONS))
    args = parser.parse_args()
    worst: dict[str, tuple[float, str]] = {}
    for arch in parse_archs(args.arch):
        spec = make_spec(arch)
        values = default_weights(spec, 0, args.size, args.size, data="photos")
        x = photo_inputs(spec, JUDGED, args.size, args.size, args.images)
        calibration = photo_inputs(spec, CALIBRATION, args.size, args.size, args.images)
        for precision in args.precisions.split(","):
            engines = [e for e in args.engines.split(",") if e == "frameworks" or not refusal(precision, e)]
            engines = [e for e in engines if e != "frameworks" or not refusal(precision, "torch")]
            for direction in ("torch2keras", "keras2torch"):
                t, k = build_pair(spec)
                src, dst = (t, k) if direction == "torch2keras" else (k, t)
                set_weights(src, values)
                copy_weights(src, dst)
                start = time.perf_counter()
                report = precision_rows(precision, src, [t, k], x, calibration, engines, "photos")
                seconds = time.perf_counter() - start
                for row in report.rows:
                    if row.reference or row.skipped:
                        continue
                    where = f"{arch} {args.size} {precision} {row.engine} {direction}"
                    unit = max((u for u in row.units if u.ratio is not None), key=lambda u: u.ratio, default=None)
                    layer = max((u for u in row.layers if u.ratio is not None), key=lambda u: u.ratio, default=None)
                    print(
                        f"{where:44s} {row.verdict} logits {row.max_rel:.2e} ratio {row.ratio:.2f}"
                        + (f"  worst unit {unit.unit} {unit.ratio:.2f}" if unit else "")
                        + (f"  worst layer {layer.unit} {layer.ratio:.2f}" if layer else "")
                        + f"  top-1 {row.top1:.0%}  SNR {row.snr_db:.1f} dB  {row.error}  ({seconds:.0f}s)",
                        flush=True,
                    )
                    for key, value in (
                        ("logits", row.ratio),
                        ("unit", unit.ratio if unit else 0),
                        ("layer", layer.ratio if layer else 0),
                    ):
                        if value > worst.get(key, (-1.0, ""))[0]:
                            worst[key] = (value, where)
    print("worst ratio to the reference's own error:")
    for key, (value, where) in worst.items():
        print(f"  {key:8s} {value:.2f}  ({where})")


if __name__ == "__main__":
    main()
