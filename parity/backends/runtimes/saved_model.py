"""TF SavedModel: Keras' own `export(format="tf_saved_model")`, run by TensorFlow (as TF Serving loads it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from parity.backends import adapter
from parity.backends.runtimes.interface import Runtime, Session, float32


class SavedModel(Runtime):
    """TensorFlow running a SavedModel's `serve` function."""

    NAME = "saved_model"
    LABEL = "TF SavedModel"
    DIST = "tensorflow-cpu"
    ROUTES = {"keras": "Keras export -> TF SavedModel"}

    def export(self, source: str, model: Any, folder: Path, shape: tuple[int, ...], dynamic: bool) -> Path:
        target = folder / "saved_model"
        adapter(model).export_format(model, "tf_saved_model", target, shape, dynamic)
        return target

    def load(self, path: Path, precision: str | None = "fp32") -> Session:
        self.check_precision(precision)
        loaded = tf.saved_model.load(str(path))

        def run(x: np.ndarray) -> np.ndarray:
            # through `loaded`: the function's variables live as long as the object holding them
            return np.asarray(loaded.serve(tf.constant(float32(x))))

        # TensorFlow lowers to bf16 only when its oneDNN auto-mixed-precision rewrite is switched on.
        options = tf.config.optimizer.get_experimental_options()
        bf16 = bool(options.get("auto_mixed_precision_onednn_bfloat16") or options.get("auto_mixed_precision_mkl"))
        evidence = f"tf.config.optimizer auto_mixed_precision_onednn_bfloat16={bf16}"
        return Session(run, "bf16" if bf16 else "fp32", evidence)
