"""Options shared by the commands, each declared once, and the helpers every command uses.

A command module calls `add_arch(p)`, `add_size(p)`, ... in its `add_arguments`; nothing here imports
a framework (the Keras backend is chosen before Keras is imported: `select_keras_backend`).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from parity.backends import BACKENDS, KERAS_BACKENDS
from parity.backends.runtimes import RUNTIME_NAMES, parse_runtimes
from parity.backends.runtimes.interface import PRECISIONS
from parity.cli.types import backend_list, device, even_size, non_negative, positive  # noqa: F401 - read as options.*
from parity.spec import LABELS, PRESETS, STEMS, VARIANTS, ResNetSpec, make_spec

# -- options ---------------------------------------------------------------------------------------


def add_arch(
    p: argparse.ArgumentParser, default: Any = "resnet18", many: bool = False, help: str | None = None
) -> None:
    """--arch: one preset (or, with `many`, a comma list or 'all', read with `archs`)."""
    if many:
        p.add_argument("--arch", default=default, help=help or "comma list of architectures, or 'all'")
    else:
        p.add_argument("--arch", default=default, choices=list(PRESETS), metavar="ARCH", help=help or _PRESETS_HELP)


_PRESETS_HELP = f"a preset: {', '.join(PRESETS)}"


def add_size(
    p: argparse.ArgumentParser, default: Any = None, pair: bool = False, help: str | None = None, even: bool = False
) -> None:
    """--size: N (or, with `pair`, H or H W, read with `size`); `even`: an even N >= 8 (the lessons)."""
    if pair:
        help = help or "H or H W (default: the size the variant was written for, 224 for most)"
        p.add_argument("--size", type=positive, nargs="+", default=default, metavar="N", help=help)
    else:
        p.add_argument("--size", type=even_size if even else positive, default=default, help=help)


def add_device(p: argparse.ArgumentParser, help: str = "cpu, cuda or cuda:N") -> None:
    p.add_argument("--device", type=device, default="cpu", help=help)


def add_seed(p: argparse.ArgumentParser, default: int | None = 0, help: str | None = None) -> None:
    p.add_argument("--seed", type=non_negative, default=default, help=help or "seeds weights and input (>= 0)")


def add_keras_backend(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keras-backend",
        choices=list(KERAS_BACKENDS),
        default=None,
        help="run the Keras side on this backend (default: KERAS_BACKEND, else tensorflow)",
    )


def formats(writable: bool = False) -> list[str]:
    """The checkpoint extensions, from the format registry (only those written, with `writable`)."""
    from parity.io.formats import listed

    return listed(writable)


def add_weights(p: argparse.ArgumentParser, required: bool = False, help: str | None = None) -> None:
    from parity.io.libraries import LIBRARIES

    help = help or f"a checkpoint ({', '.join(formats())}) or a model folder of {', '.join(LIBRARIES)}"
    p.add_argument("--weights", metavar="FILE", required=required, help=help)


def add_backend(
    p: argparse.ArgumentParser, default: Any = None, both: bool = False, required: bool = False, help: str = ""
) -> None:
    """--backend: one of the model backends (with `both`: or 'both')."""
    choices = [*BACKENDS, "both"] if both else list(BACKENDS)
    p.add_argument("--backend", default=default, required=required, choices=choices, help=help or None)


def add_library(p: argparse.ArgumentParser) -> None:
    """--to: write in a library's own layout (choices from the library registry)."""
    from parity.io.libraries import LIBRARIES

    writes = "; ".join(f"{name}: {lib.WRITES}" for name, lib in LIBRARIES.items())
    p.add_argument(
        "--to",
        choices=list(LIBRARIES),
        default=None,
        help=f"write DST in a library's own layout ({writes}); default: this project's format, from DST's extension",
    )


def runtime_list(text: str) -> list[str]:
    try:
        return parse_runtimes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--runtime {text}: ")) from None


def add_runtime(p: argparse.ArgumentParser, help: str) -> None:
    """--runtime all|NAME,...: deployment runtimes (`parity.backends.runtimes`), in the registry's order."""
    p.add_argument("--runtime", type=runtime_list, metavar="all|NAME,...", help=f"{help} ({', '.join(RUNTIME_NAMES)})")


def add_precision(p: argparse.ArgumentParser, help: str, data: bool = True) -> None:
    """--precision (`parity.backends.runtimes.interface.PRECISIONS`) and, with `data`, --data photos|noise."""
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=help)
    if data:
        p.add_argument("--data", choices=["photos", "noise"], help=_DATA_HELP)


_DATA_HELP = (
    "what BN and int8 are calibrated on and low precision is judged on: real photographs (scikit-learn's sample "
    "images, cropped and flipped; the default with --precision) or seeded noise (the default in fp32)"
)


def add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite an existing file or folder")


def add_threads(p: argparse.ArgumentParser) -> None:
    """--threads N: torch, TensorFlow, numpy's BLAS and onnxruntime compute with N threads."""
    p.add_argument(
        "--threads",
        type=positive,
        default=None,
        help="threads per framework (default: OMP_NUM_THREADS if set, else the CPUs this process may use, "
        "affinity and cgroup quota, less those other processes keep busy at start)",
    )


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")


def add_spec_sizes(p: argparse.ArgumentParser, variant: bool = True) -> None:
    """--variant, --num-classes and --in-channels: what a file may be checked against (`overrides_from_args`)."""
    if variant:
        p.add_argument("--variant", default="torchvision", choices=list(VARIANTS))
    p.add_argument(
        "--num-classes",
        type=non_negative,
        default=None,
        help="fc outputs, 0 for none (the pooled features; default: the preset's, or the file's)",
    )
    p.add_argument("--in-channels", type=positive, default=None, help="input channels (default: 3, or the file's)")


def add_spec_shape(p: argparse.ArgumentParser) -> None:
    """--stem and --set: the shape of a seeded network (`overrides_from_args`)."""
    p.add_argument("--stem", choices=list(STEMS), default=None, help="stem kind (default: the preset's)")
    p.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="any spec field, e.g. --set padding=same --set widths=16,32,64,128 (repeatable)",
    )


def add_spec_overrides(p: argparse.ArgumentParser, variant: bool = True) -> None:
    """--variant, --num-classes, --in-channels, --stem and --set: read together with `spec_from_args`."""
    add_spec_sizes(p, variant)
    add_spec_shape(p)


# -- reading them ----------------------------------------------------------------------------------


def apply_threads(args: argparse.Namespace) -> int:
    """Use --threads (or its default) for every framework this process starts from now on; the count."""
    from parity.core.threads import available_cpus, configure, default_threads, requested

    given, cpus = getattr(args, "threads", None), available_cpus()
    if given is not None and given > cpus:
        raise ValueError(
            f"--threads {given}: this process may use {cpus} CPUs (affinity and cgroup quota), and threads "
            f"beyond them only wait for one another; use --threads {cpus} or fewer"
        )
    count = given or requested() or default_threads()
    configure(count)
    return count


def size(values: Sequence[int]) -> tuple[int, int]:
    """(H, W) from --size H or --size H W."""
    if len(values) not in (1, 2):
        raise ValueError(f"--size takes H or H W, got {len(values)} numbers")
    return values[0], values[-1]


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """`--set field=value` pairs -> spec overrides; values as JSON (1e-3, true, null), '3,4,6,3' a tuple."""
    fields = [f.name for f in dataclasses.fields(ResNetSpec) if f.name not in LABELS]
    overrides: dict[str, Any] = {}
    for item in items or []:
        field, sep, text = item.partition("=")
        field = field.strip().replace("-", "_")
        if not sep or not field:
            raise ValueError(f"--set takes field=value, got {item!r}")
        if field not in fields:
            raise ValueError(f"--set {field}: unknown spec field; fields are {', '.join(fields)}")
        text = text.strip()
        if "," in text:
            try:
                value: Any = tuple(int(v) for v in text.split(",") if v.strip())
            except ValueError:
                raise ValueError(f"--set {field}: a comma list holds ints (e.g. 3,4,6,3), got {text!r}") from None
        else:
            try:
                value = json.loads(text.lower() if text.lower() in ("true", "false", "null") else text)
            except json.JSONDecodeError:
                value = text
        overrides[field] = value
    return overrides


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """--set, --stem, --num-classes and --in-channels as spec overrides (the one place they are read)."""
    overrides = parse_set(getattr(args, "set", None))
    for field in ("num_classes", "in_channels", "stem"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return overrides


def spec_from_args(arch: str, args: argparse.Namespace) -> ResNetSpec:
    """A preset spec with --variant and the overrides applied (validated)."""
    return make_spec(arch, getattr(args, "variant", "torchvision"), **overrides_from_args(args))


def select_keras_backend(name: str | None) -> None:
    """Make `import keras` use this backend (before Keras is imported), or refuse clearly."""
    if name is None:
        return
    if name not in KERAS_BACKENDS:
        raise ValueError(f"--keras-backend must be one of {', '.join(KERAS_BACKENDS)}, got {name!r}")
    if importlib.util.find_spec(name) is None:  # each backend is the package of the same name
        extra = {"jax": "jax", "tensorflow": "keras", "torch": "torch"}[name]
        raise ValueError(
            f"--keras-backend {name} needs the {name} package, which is not installed: pip install 'resnet-parity[{extra}]'"
        )
    from parity.core.provenance import keras_backend

    if "keras" in sys.modules and keras_backend() != name:
        raise ValueError(
            f"--keras-backend {name}: Keras is already loaded with the {keras_backend()} "
            "backend in this process; run in a fresh process or set KERAS_BACKEND"
        )
    os.environ["KERAS_BACKEND"] = name


def require_device(name: str) -> None:
    """Refuse a CUDA device where torch sees none (ValueError: one line, exit 2)."""
    if name.startswith("cuda"):
        from parity.checks.compare import cuda_available

        if not cuda_available():
            raise ValueError(f"--device {name}, but no CUDA device is visible to torch")
