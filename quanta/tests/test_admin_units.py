"""The exchange admin lists speak decimals: no raw 10^-7 units beside decimals, the order
price as a decimal, the side filter by name.

Method: rows written straight to the exchange tables (the admin only reads them), the lists
fetched with Django's admin client and their text compared."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from exchange.core.orderbook import Side
from exchange.models import BalanceRecord, OrderRecord

pytestmark = pytest.mark.django_db(databases=["default", "ledger"])


def _text(client: Client, path: str, **query: str) -> str:
    return html.unescape(client.get(path, query).content.decode())


def test_balances_show_decimals_and_no_raw_units(admin_client: Client) -> None:
    BalanceRecord.objects.create(
        account=1, asset="USD", amount=157_587_000_000, liabilities=25_000_000
    )
    text = _text(admin_client, "/admin/exchange/balancerecord/")
    assert "15758.7" in text and "2.5" in text and "15756.2" in text
    assert "157587000000" not in text


def test_orders_show_the_price_as_a_decimal_and_the_side_by_name(admin_client: Client) -> None:
    OrderRecord.objects.create(
        order_id=13, account=1, asset="XLM", side=int(Side.BUY), price=1_300_000, amount=200_000_000
    )
    text = _text(admin_client, "/admin/exchange/orderrecord/")
    assert "0.130" in text and "20" in text
    assert "1300000" not in text
    filtered = admin_client.get("/admin/exchange/orderrecord/", {"side": "buy"})
    assert [o.order_id for o in filtered.context["cl"].result_list] == [13]
    assert "sell" in _text(admin_client, "/admin/exchange/orderrecord/")  # the filter's choices
