"""`resnet-parity predict`: class names and softmax percentages for image files."""

from __future__ import annotations

import argparse

from parity.cli import options, output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--weights",
        required=True,
        metavar="best.safetensors",
        help="a `train` checkpoint, or a transformers or timm model folder (its labels and normalisation)",
    )
    options.add_backend(p, default="torch")
    p.add_argument("--topk", type=options.positive, default=5)
    options.add_keras_backend(p)


def run(args: argparse.Namespace) -> int:
    from parity.io.inputs import describe_images
    from parity.training.predict import load_trained, predict_images

    options.select_keras_backend(args.keras_backend)
    trained = load_trained(args.weights, args.backend)
    predictions = predict_images(trained, args.images, args.topk)
    for line in describe_images(args.images):  # what each file was converted from, on stderr
        output.console(stderr=True).print(line, markup=False, highlight=False)
    console = output.console()
    for path, top in zip(args.images, predictions):
        console.print(f"{path}: " + ", ".join(f"{name} {p:.1%}" for name, p in top), markup=False)
    return 0
