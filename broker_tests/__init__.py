"""Tests of mqkit's service layer against real brokers (``scripts/test-all`` runs them
with the brokers up). Not under ``tests/``: the unit step (``pytest tests``) has no broker.
"""
