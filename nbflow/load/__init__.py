"""Reading input files: YAML with positions, notebooks. Knows nothing of what they mean."""
