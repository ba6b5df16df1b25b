"""Quantum processors: one module per kind of quantum; each validates, then emits effects."""
