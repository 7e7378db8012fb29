"""Training: the `train` command, data parallel runs, the scale check, predict and evaluate."""
