"""Buy-till-you-die and spend models: one module per model, the fitting machinery shared."""
