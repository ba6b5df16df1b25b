"""The node runtime: the composition root of a node's engine process (`runworker quanta`).

It builds the node from the database (`loader`, `snapshot`), hands the payment providers'
hooks to the pure core through constructors (`providers`, `payments.payouts.PayoutDesk`),
runs the engine worker of the node's role (`engine_worker` with `alpha_worker` or
`auditor_worker`, and alpha's `deposits`), sends its results (`outbox`) and persists what it
produces across every app's rows (`persistence`). It is the only part of the quanta app that
imports `payments` and `chronicler` (tests/test_layers.py holds that).
"""
