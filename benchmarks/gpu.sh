#!/usr/bin/env bash
# The prepared GPU check (run it the first time a CUDA machine is at hand; CI has none).
#
# On a CUDA machine without TensorFlow, Keras runs on JAX (or torch): every figure below is measured,
# nothing assumed. Writes one JSON per step into OUT (default gpu-results/) and a summary gpu.json:
#   1. the parity check, all five depths, TF32 off, then on (Keras on JAX, float64 port verdict on GPU);
#   2. the ONNX four-way comparison on the CUDA execution provider (Keras on torch: JAX cannot export);
#   3. bench: torch runtimes of that machine (bench times on its CPU: it has no CUDA device option yet).
# Budget: under 5 minutes on one H100/H200-class GPU. Usage: bash benchmarks/gpu.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-results}"
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=3
device=cuda
if [ "${GPU_SH_DRY_RUN:-0}" = 1 ]; then device=cpu; fi   # CI: the same steps, tiny, on the CPU
archs="all"; size=224; batch=8
if [ "$device" = cpu ]; then archs="resnet18"; size=32; batch=2; fi
run() { echo "== $*" >&2; "$@"; }
run resnet-parity check --arch "$archs" --size "$size" --batch "$batch" --device "$device" --keras-backend jax \
  --direction torch2keras --json "$out/check-tf32-off.json"
if [ "$device" = cuda ]; then
  run resnet-parity check --arch "$archs" --size "$size" --batch "$batch" --device cuda --keras-backend jax \
    --direction torch2keras --allow-tf32 --json "$out/check-tf32-on.json"
fi
run resnet-parity check --arch resnet50 --size "$size" --batch "$batch" --device "$device" --keras-backend torch \
  --direction torch2keras --runtime onnxruntime --json "$out/check-onnx.json"
if [ "$device" = cuda ]; then
  run resnet-parity bench --arch resnet50 --batch 32 --size 224 --runtimes torch,torch-channels-last,torch-compile,train-torch \
    --json "$out/bench.json"
fi
python - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name != "gpu.json"}
rows = []
for name, data in summary.items():
    for r in data.get("results", []):
        rep = r["report"]
        port = [s["max_rel"] for s in rep.get("float64_stages", []) + rep.get("blocks", [])]
        rows.append({"run": name, "arch": r["arch"], "pair": f"{rep['a']} vs {rep['b']}", "passed": r["passed"],
                     "port_float64_max_rel": max(port) if port else None, "fp32_logits_max_rel": r["max_rel"],
                     "tf32": rep["tf32"], "device": rep["provenance"].get("device_name")})
        for o in r.get("runtimes", []):  # each runtime row (on the CPU) against the float64 truth
            rows.append({"run": name, "arch": r["arch"], "pair": f"{o['source']} via {o['route']}", "passed": o["passed"],
                         "fp32_logits_max_rel": (o["diff"] or {}).get("max_rel"), "device": "cpu"})
(out / "gpu.json").write_text(json.dumps({"rows": rows, "runs": summary}, indent=1))
for row in rows:
    print(row)
PY
