"""Training: losses, prompt simulation, data and the `sam2 train` loop."""
