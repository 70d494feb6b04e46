"""Checking a manifest with its notebook: the pydantic model, the semantic rules, the lock file,
Katib's rules; produces the frozen Project and diagnostics."""
