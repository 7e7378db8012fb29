"""The checks: compare two models, localise a difference, training-step parity, the lessons, ONNX export, bench."""
