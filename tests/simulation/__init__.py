"""A deterministic fault simulator of one constellation: the real node cores, a seeded
scheduler instead of processes (docs/engine.md, "Fault simulator")."""
