"""Writing manifests: `nbflow init` drafts, their YAML, and the Kale import."""
