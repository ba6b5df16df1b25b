"""The local ledger: the embedded default payment network and its provider.

`ledger` is the network itself (its own database, alias `ledger`), `provider` the
`PaymentProvider` that watches and pays out of its vault. Their pure rules (transaction format,
multisig) are in `payments.core.local_ledger`, where the purity test and mypy --strict cover
every core module.
"""
