"""Reading and writing weights: canonical weights of a model, checkpoint files, other libraries' names, images and data sets."""
