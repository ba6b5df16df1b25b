"""`audit`: a node's proof of reserves, printed (`GET /api/constellation/reserves`).

For each asset: what the vaults held as of a finalized apex (each provider's vault, read from
its external network at that apex's cursor) against what the constellation owed at that apex
(every account's balance, locked parts included, and the fee account), their difference
(vault minus liabilities) and the apex's state hash. It is the node's word, like balances:
ask another node too, and at the same apex the state hash must be the same.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from constellation_client.amounts import format_amount
from constellation_client.wire import ConstellationClientError, node_urls

RESERVES_PATH = "/api/constellation/reserves"


def reserves_url(node: str) -> str:
    """Returns the reserves endpoint of a node base URL such as http://127.0.0.1:8000."""
    info_url = node_urls(node)[1]
    return info_url.removesuffix("/api/constellation/info") + RESERVES_PATH


def fetch_reserves(node: str, timeout_s: float) -> dict[str, Any]:
    """GETs the node's proof of reserves; raises ConstellationClientError saying why not."""
    url = reserves_url(node)
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            data = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ConstellationClientError(f"{url}: HTTP {error.code} {_description(error)}") from None
    except (OSError, ValueError) as error:
        raise ConstellationClientError(f"cannot read {url}: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("assets"), list):
        raise ConstellationClientError(f"{url} did not return a proof of reserves")
    return data


def _description(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("description", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _amount(text: object) -> str:
    return "unknown" if text is None else format_amount(int(str(text)))


def audit_lines(report: dict[str, Any]) -> list[str]:
    """Returns the human lines of a proof of reserves."""
    lines = [
        f"proof of reserves at finalized apex {report.get('apex')}, "
        f"state hash {report.get('state_hash')} (the node's word)"
    ]
    for row in report["assets"]:
        lines.append(
            f"{row['asset']}: vault {_amount(row['vault'])}, liabilities "
            f"{_amount(row['liabilities'])} (accounts {_amount(row['accounts'])} + fee account "
            f"{_amount(row['fee_account'])}), difference {_amount(row['difference'])}"
        )
        for vault in row["providers"]:
            seen = vault["error"] or _amount(vault["balance"])
            lines.append(
                f"  {vault['provider']} vault {vault['vault']} at cursor {vault['cursor']}: {seen}"
            )
    return lines


def audit_covered(report: dict[str, Any]) -> bool:
    """Tells whether every asset's vaults were read and hold at least its liabilities."""
    return all(
        row["difference"] is not None and int(row["difference"]) >= 0 for row in report["assets"]
    )
