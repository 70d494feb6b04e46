"""Generating artifacts from a checked project: the KFP component source, the compiled pipeline,
the Katib Experiment, the versioned build folder and its snapshot."""
