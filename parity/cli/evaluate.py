"""`resnet-parity evaluate`: loss, accuracy and per-class accuracy of a checkpoint on held-out data."""

from __future__ import annotations

import argparse

from parity.cli import options, output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        required=True,
        metavar="best.safetensors",
        help="a `train` checkpoint, or a transformers or timm model folder (its labels and normalisation)",
    )
    p.add_argument("--data", required=True, help="as for train; its validation split (or CIFAR-10's test batch)")
    options.add_backend(p, default="torch")
    p.add_argument("--batch", type=options.positive, default=64)
    options.add_seed(p, default=None, help="split seed (default: the training run's)")
    p.add_argument("--plot", metavar="PNG", help="write the confusion matrix")
    options.add_keras_backend(p)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from parity.training.predict import evaluate, evaluation_data, load_trained, plot_confusion

    options.select_keras_backend(args.keras_backend)
    with output.step(f"loading {args.weights} into {args.backend}"):
        trained = load_trained(args.weights, args.backend)
    with output.step(f"reading {args.data}"):
        data = evaluation_data(args.data, trained, args.seed)
    with output.step(f"evaluating {len(data)} images"):
        result = evaluate(trained, data, args.batch)
    console = output.console()
    console.print(
        f"{args.weights} in {args.backend} on {data.name}: {len(data)} images, "
        f"loss {result.loss:.4f}, accuracy {result.accuracy:.2%}",
        markup=False,
    )
    table = Table()
    for column in ("class", "images", "accuracy"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, count, acc in zip(result.classes, result.counts, result.per_class):
        table.add_row(name, str(count), f"{acc:.2%}")
    console.print(table)
    if args.plot:
        plot_confusion(result, args.plot)
    return 0
