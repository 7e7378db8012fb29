"""Framework-free helpers every layer above may use: tolerances, file writing, provenance, layouts."""
