"""Validators of nbformat's v4 notebook schemas, generated at development time by
`python -m tests.support.nbformat_validators --update`: see tests/support/nbformat_validators.py."""

MINORS = (0, 1, 2, 3, 4, 5)
