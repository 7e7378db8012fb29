"""`resnet-parity`: one module per command (`parity/cli/<command>.py`), options declared once (`options`).

`main` builds the parser with every command's one-line help, but imports a command's module, and so
its options and whatever it computes with, only when that command runs: `resnet-parity --help` imports
no framework.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from parity.cli import options, output
from parity.core import signals
from parity.core.logs import set_verbose

COMMANDS = {
    "summary": "per-stage, per-block or per-layer shapes, parameters and MACs from the spec and both models",
    "check": "port weights across backends; judge the port in float64 and fp32; name the first wrong block",
    "export": "export one model to ONNX (checked with onnx.checker, written atomically)",
    "lessons": "measure every PyTorch/Keras difference: naive port vs correct port",
    "convert": "convert a checkpoint between .pt/.pth, .safetensors, .npz, .weights.h5 and .keras",
    "train": "train the torch model, the Keras model or both (same weights, same batches)",
    "predict": "class names and softmax percentages for image files",
    "evaluate": "loss, accuracy and per-class accuracy of a checkpoint on held-out data",
    "bench": "every runtime side by side: img/s and share of SGEMM peak",
    "scale": "N processes (torch DDP) or devices (Keras on JAX) against one, after every SGD step",
}
"""Command -> one-line help; the module `parity.cli.<command>` has `add_arguments(parser)` and `run(args)`."""

ERRORS = (
    ValueError,
    RuntimeError,
    FileExistsError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    FloatingPointError,
)
"""What a command raises for bad input or a failed run: printed as one line, exit 2."""


def _quiet_frameworks() -> None:
    # TensorFlow's C++ start-up logging drowns the tables; users can still override it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Deprecation notices from inside tf2onnx and torch.export, not about anything a user passed.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(keras|torch|tf2onnx|copyreg)")
    warnings.filterwarnings("ignore", message=r".*np\.object.*", category=FutureWarning)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)


def version_text() -> str:
    """`resnet-parity --version`: this package and every framework it would use (none imported)."""
    from parity.core.provenance import keras_backend, versions

    found = versions()
    others = ", ".join(f"{k} {v}" for k, v in found.items() if k != "resnet-parity" and v)
    return f"resnet-parity {found['resnet-parity']} ({others}; Keras backend {keras_backend()})"


class _Version(argparse.Action):
    """--version, computed only when asked (it reads every package's metadata)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a mistake is one line naming the option and where help is, not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported and its options added (None: every command's)."""
    parser = _Parser(
        prog="resnet-parity",
        description="One ResNet spec, a PyTorch and a Keras model built from it, and proof they agree.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the versions of every framework and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if command is None or name == command:
            module = importlib.import_module(f"parity.cli.{name}")
            module.add_arguments(p)
            options.add_threads(p)  # every command computes
            output.add_quiet(p)
            output.add_verbose(p)
            p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_frameworks()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    with signals.interruptible():
        try:
            args = build_parser(command if command in COMMANDS else "").parse_args(argv)
        except KeyboardInterrupt:  # while a command's module was imported
            print("resnet-parity: interrupted", file=sys.stderr)
            return signals.exit_status()
        args.argv = argv
        output.QUIET[0] = getattr(args, "quiet", False)
        set_verbose(getattr(args, "verbose", False))
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        options.apply_threads(args)
        return args.func(args)
    except ERRORS as exc:
        if signals.launched() and signals.RECEIVED:  # a peer's interrupt broke this one's step: the parent speaks
            return signals.exit_status()
        print(f"resnet-parity {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if not signals.launched():
            # Files are written atomically: an interrupt leaves nothing half-written.
            print(
                f"resnet-parity {args.command}: {str(exc) or 'interrupted; nothing half-written was left'}",
                file=sys.stderr,
            )
        return signals.exit_status()
