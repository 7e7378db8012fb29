"""Peak memory (max RSS) and wall time of the project's heavy jobs, each in a fresh process.

    python benchmarks/memory.py [--only NAME ...] [--list]

Each job runs as a child process. "peak RSS" is the kernel's own accounting for it (`os.wait4`), the
figure `/usr/bin/time -v` prints as "Maximum resident set size": the largest single process of the
job. Jobs that start processes of their own (torchrun, the bench's other Keras backends) hold
several at once, so "tree peak" is the largest sum over the job and all its descendants of their
proportional set sizes (shared pages split between the processes mapping them), sampled every 0.1 s
from /proc.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

JOBS = {
    "check": ["resnet-parity", "check"],
    "check --runtime onnxruntime": ["resnet-parity", "check", "--runtime", "onnxruntime"],
    "export torch resnet18": [
        "resnet-parity",
        "export",
        "--arch",
        "resnet18",
        "--backend",
        "torch",
        "--out",
        "{tmp}/t18.onnx",
    ],
    "export keras resnet18": [
        "resnet-parity",
        "export",
        "--arch",
        "resnet18",
        "--backend",
        "keras",
        "--out",
        "{tmp}/k18.onnx",
    ],
    "export torch resnet50": [
        "resnet-parity",
        "export",
        "--arch",
        "resnet50",
        "--backend",
        "torch",
        "--out",
        "{tmp}/t50.onnx",
    ],
    "export keras resnet50": [
        "resnet-parity",
        "export",
        "--arch",
        "resnet50",
        "--backend",
        "keras",
        "--out",
        "{tmp}/k50.onnx",
    ],
    "test: four-way bottleneck": [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/parity/checks/test_export.py::test_four_way_parity_bottleneck_resnet50",
    ],
    "test: export module": [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/parity/checks/test_export.py",
    ],
    "test: lessons module": [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/parity/checks/test_lessons.py",
    ],
    "test: trainer module": [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/parity/training/test_trainer.py",
    ],
    "test: lessons then train": [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/parity/checks/test_lessons.py",
        "tests/parity/checks/test_train_steps.py",
    ],
    "test suite (CI's command)": [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "auto",
        "--maxprocesses",
        "4",
        "--dist",
        "loadscope",
    ],
}


def tree_pss(root: int) -> int:
    """Summed proportional set size (bytes) of process `root` and all its descendants.

    PSS splits each shared page among the processes that map it, so libraries loaded by a parent and
    its child count once, as they do against a machine's (or a container's) memory.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])  # field 4: parent pid
            except OSError:  # the process ended while we looked
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                total += next(int(line.split()[1]) * 1024 for line in rollup if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return total


def peak(command: list[str]) -> tuple[float, float, float, int]:
    """(peak RSS in GB, tree peak in GB, seconds, exit status) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    highest, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            highest[0] = max(highest[0], tree_pss(child.pid))
            done.wait(0.1)  # reading smaps_rollup stalls the process a little: not too often

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    sampler.join()
    return usage.ru_maxrss / 1e6, highest[0] / 1e9, time.perf_counter() - start, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(JOBS), metavar="NAME")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        print("\n".join(JOBS))
        return
    print(f"{'job':28} {'peak RSS':>9} {'tree peak':>10} {'seconds':>8} {'exit':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in JOBS.items():
            if args.only and name not in args.only:
                continue
            gb, tree_gb, seconds, code = peak([part.format(tmp=tmp) for part in command])
            print(f"{name:28} {gb:6.2f} GB {tree_gb:7.2f} GB {seconds:8.1f} {code:5d}", flush=True)


if __name__ == "__main__":
    main()
