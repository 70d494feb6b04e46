"""Putting builds on a cluster: Kubernetes server-side apply, the KFP REST API, the GitOps
commands' logic and the GitHub workflow templates."""
