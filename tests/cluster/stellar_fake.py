"""A Stellar provider for cluster tests: the Horizon fake in the test process, its vault, and
the settings and node options that point a real constellation at it.

The fake (payments/tests/fake_horizon.py, a real HTTP server on a loopback port in a thread
of the test process) holds a vault whose signers are the genesis auditors' node keys (weight 1
each, every threshold their majority, no master key among them: what
`StellarProvider.vault_signers` wants), and the accounts deposits come from and withdrawals go
to (`account_create`: each trusts the fake's USD). The provider carries USD (a credit asset:
the quote asset, whose deposit registers an account) and XLM (native). Every node reads the
same fake: `CONSTELLATION_PAYMENT_PROVIDERS` carries its URL (`StellarFake.env`). A payment
into the vault is a real Stellar transaction signed by the payer and submitted to the fake
over HTTP (`pay_vault`): the provider credits the account of its source key, no memo needed
(`StellarProvider.notification_after`).

Use: `stellar_cluster_started(size, tmp_path_factory)` is a module fixture's body yielding
(cluster, stellar); `fake_vault_signers` reads the vault's signers back from the fake (a test
that changes the auditors checks they follow).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

import pytest
from stellar_sdk import Asset, Keypair, Network, Server, StrKey, TransactionBuilder

from payments.providers.stellar import BASE_FEE, amount_units
from payments.tests.fake_horizon import FakeAccount, FakeHorizon
from quanta.core.config import STELLAR_NETWORK_FEE_UNITS
from quanta.core.keys import KeyPair
from quanta.core.testing import default_settings
from quanta.core.xdr.schema import ConstellationSettings, ProviderAsset, ProviderSettings
from tests.cluster.conftest import cluster_new, genesis_started
from tools.cluster import Cluster

PROVIDER_NAME = "main"
PROVIDER_ID = f"stellar-{PROVIDER_NAME}"
PASSPHRASE = Network.TESTNET_NETWORK_PASSPHRASE
XLM_FEE_MIN = STELLAR_NETWORK_FEE_UNITS
"""The smallest withdrawal fee the settings allow for XLM: the vault's network fee."""
USD_FEE_MIN = 1_000
"""The smallest withdrawal fee of the credit asset USD (the settings want at least 1)."""
VAULT_SEQUENCE = 4_294_967_296
"""The vault's sequence at creation (ledger 1 << 32, as Stellar numbers a new account's)."""


def majority(count: int) -> int:
    """Returns the majority of `count` signers."""
    return count // 2 + 1


def fake_vault_signers(fake: FakeHorizon, vault: str) -> tuple[set[bytes], int]:
    """Returns the vault's signers on the fake (raw 32-byte ed25519 keys) and its threshold,
    read over HTTP as the nodes read it (Horizon's account resource)."""
    account = Server(fake.url).accounts().account_id(vault).call()
    keys = {
        StrKey.decode_ed25519_public_key(signer["key"])
        for signer in account["signers"]
        if signer["type"] == "ed25519_public_key" and int(signer["weight"]) > 0
    }
    return keys, int(account["thresholds"]["med_threshold"])


@dataclass
class StellarFake:
    """The fake Horizon with one vault, and what a cluster needs to use it."""

    fake: FakeHorizon
    vault: str
    ttl_ms: int = 60_000
    issuer: str = field(default_factory=lambda: Keypair.random().public_key)
    """The issuer of USD on the fake; it also funds new accounts with XLM (not the vault:
    its payments credit nobody)."""

    @property
    def usd_token(self) -> str:
        """Returns the provider token of USD: `USD:<issuer>`."""
        return f"USD:{self.issuer}"

    def asset_of(self, token: str) -> Asset:
        """Returns the Stellar asset of a constellation asset code (`XLM` or `USD`)."""
        return Asset.native() if token == "XLM" else Asset("USD", self.issuer)  # noqa: S105

    def node_options(self) -> dict[str, str]:
        """Returns one node's options for the Stellar provider (the same for every node)."""
        return {
            "horizon_url": self.fake.url,
            "network_passphrase": PASSPHRASE,
            "ttl_ms": str(self.ttl_ms),
        }

    def env(self) -> dict[str, str]:
        """Returns the environment that points a node's Stellar provider at the fake."""
        return {"CONSTELLATION_PAYMENT_PROVIDERS": json.dumps({PROVIDER_ID: self.node_options()})}

    def provider_settings(self) -> ProviderSettings:
        """Returns the Stellar provider of the constellation settings: the vault carrying
        USD (the quote asset: a deposit of it registers an account) as the issuer's credit
        asset and XLM as the native one, from the first payment."""
        usd = ProviderAsset(self.usd_token, "USD", False, USD_FEE_MIN)
        xlm = ProviderAsset("XLM", "XLM", False, XLM_FEE_MIN)
        return ProviderSettings("stellar", PROVIDER_NAME, self.vault, "0", (usd, xlm), 0)

    def settings(
        self, auditors: Sequence[KeyPair], addresses: Sequence[str], *, with_local: bool = False
    ) -> ConstellationSettings:
        """Returns genesis settings of `auditors` (the first is alpha) whose only provider is
        the Stellar vault (`with_local`: the local ledger's vault too)."""
        settings = default_settings(auditors, addresses=addresses)
        local = settings.providers if with_local else ()
        return replace(settings, providers=(*local, self.provider_settings()))

    def vault_create(self, signers: Sequence[KeyPair]) -> None:
        """Creates the vault on the fake: `signers` at weight 1, threshold their majority."""
        keys = [k.public_key_strkey for k in signers]
        vault = FakeAccount(self.vault, VAULT_SEQUENCE, keys, majority(len(keys)))
        vault.trustlines.add(self.usd_token)
        self.fake.account_add(vault)

    def account_create(self, account: str, usd: str = "0", xlm: str = "0") -> None:
        """Creates an ordinary account (its own key signs for it) trusting USD, funded with
        `usd` and `xlm` by the issuer."""
        self.fake.account_add(FakeAccount(account, VAULT_SEQUENCE, [account], 1, {self.usd_token}))
        if Decimal(usd) > 0:
            self.fake.pay(self.issuer, account, usd, asset=("USD", self.issuer))
        if Decimal(xlm) > 0:
            self.fake.pay(self.issuer, account, xlm)

    def pay_vault(self, payer: KeyPair, asset: str, amount: str) -> str:
        """Pays `amount` of `asset` (`USD` or `XLM`) from `payer`'s account into the vault
        with a real transaction signed by `payer`, submitted to the fake over HTTP; returns
        its hash."""
        server = Server(self.fake.url)
        source = server.load_account(payer.public_key_strkey)
        transaction = (
            TransactionBuilder(source, PASSPHRASE, base_fee=BASE_FEE)
            .append_payment_op(self.vault, self.asset_of(asset), amount)
            .set_timeout(60)
            .build()
        )
        transaction.sign(Keypair.from_secret(payer.secret))
        answer = server.submit_transaction(transaction, skip_memo_required_check=True)
        return str(answer["hash"])

    def balance(self, account: str, asset: str) -> int:
        """Returns the account's balance of `asset` (`USD` or `XLM`) on the fake, in 10^-7
        units (0 if it holds none)."""
        body = self.fake.account_json(account)
        assert body is not None, f"{account} is not on the fake"
        wanted = self.asset_of(asset)
        return sum(
            amount_units(b["balance"])
            for b in body["balances"]
            if (b["asset_type"] == "native") == wanted.is_native()
            and b.get("asset_code", "XLM") == wanted.code
        )

    def payments_to(self, account: str) -> list[dict[str, object]]:
        """Returns the payments the fake recorded into `account` (failed ones included)."""
        with self.fake.lock:
            return [dict(p) for p in self.fake.payments if p["to"] == account]


def stellar_cluster_started(
    size: int,
    tmp_path_factory: pytest.TempPathFactory,
    genesis_size: int | None = None,
    *,
    with_local: bool = False,
    **env: str,
) -> Iterator[tuple[Cluster, StellarFake]]:
    """Starts the fake, a vault of the first `genesis_size` nodes (default all) and a cluster
    of `size` nodes initialized with those as auditors and the Stellar vault as its provider;
    yields both and stops them whatever happened: a module fixture's body. `with_local`: the
    local ledger's vault is a provider too. `env` goes to every process (besides the provider
    options)."""
    fake = FakeHorizon(PASSPHRASE, destinations_checked=True).start()
    try:
        stellar = StellarFake(fake, Keypair.random().public_key)
        cluster = cluster_new(size, tmp_path_factory, None, **{**stellar.env(), **env})
        genesis = cluster.nodes[: genesis_size or size]
        stellar.vault_create([n.keypair for n in genesis])
        keys, urls = [n.keypair for n in genesis], [n.url for n in genesis]
        settings = stellar.settings(keys, urls, with_local=with_local)
        started = next(genesis_started(cluster, genesis, settings))  # Stops it if it fails.
        try:
            yield started, stellar
        finally:
            started.stop()
    finally:
        fake.stop()
