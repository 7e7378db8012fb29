"""Peak memory (max RSS) and wall time of the project's heavy jobs, each in a fresh process.

    python benchmarks/memory.py [--only NAME ...] [--list]

Each job runs as a child process; its peak resident set size comes from the kernel's own accounting
for that child (`os.wait4`), the figure `/usr/bin/time -v` prints as "Maximum resident set size".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

JOBS = {
    "check": ["resnet-parity", "check"],
    "check --onnx": ["resnet-parity", "check", "--onnx"],
    "export torch resnet18": ["resnet-parity", "export", "--arch", "resnet18", "--backend", "torch", "--out", "{tmp}/t18.onnx"],
    "export keras resnet18": ["resnet-parity", "export", "--arch", "resnet18", "--backend", "keras", "--out", "{tmp}/k18.onnx"],
    "export torch resnet50": ["resnet-parity", "export", "--arch", "resnet50", "--backend", "torch", "--out", "{tmp}/t50.onnx"],
    "export keras resnet50": ["resnet-parity", "export", "--arch", "resnet50", "--backend", "keras", "--out", "{tmp}/k50.onnx"],
    "test: four-way bottleneck": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                "tests/parity/test_export.py::test_four_way_parity_bottleneck_resnet50"],
    "test: export module": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/parity/test_export.py"],
    "test: lessons module": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/parity/test_lessons.py"],
    "test: trainer module": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/parity/test_trainer.py"],
}


def peak(command: list[str]) -> tuple[float, float, int]:
    """(peak RSS in GB, seconds, exit status) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    _, status, usage = os.wait4(child.pid, 0)
    return usage.ru_maxrss / 1e6, time.perf_counter() - start, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(JOBS), metavar="NAME")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        print("\n".join(JOBS))
        return
    print(f"{'job':28} {'peak RSS':>9} {'seconds':>8} {'exit':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in JOBS.items():
            if args.only and name not in args.only:
                continue
            gb, seconds, code = peak([part.format(tmp=tmp) for part in command])
            print(f"{name:28} {gb:7.2f} GB {seconds:8.1f} {code:5d}", flush=True)


if __name__ == "__main__":
    main()
