"""Back up a node's database and restore it on another host (`backup_node`, `restore_node`).

A backup is a directory: `node.dump`, the node's database as `pg_dump --format=custom` writes
it (one transaction, so a consistent copy of a running node), and `manifest.json`, which says
whose and of what it is: the node's public key, the constellation id, the persisted apex and
snapshot apex, and the dump's SHA-256. The node's secret key is not in it: it lives in its own
secret file, backed up apart (docs/admin.md, Backup and restore).

Restoring checks the manifest before it touches anything: the backup must be this node's (a
node restored with another node's rows would sign as one node what the other persisted), the
dump must match its hash, and the target database must not already hold quanta (unless
forced): restoring over a live chain would silently go back in it. Then `pg_restore` and
`migrate` (a newer release may have migrations the backup lacks). A restored node is an old
node that restarts: it loads at the backup's apex and catches up from alpha, comparing every
quantum alpha re-sends at an apex it persisted with its own row (`persisted_quanta`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Max

from quanta.core.keys import encode_public_key
from quanta.models import QuantumRecord, SnapshotRecord
from quanta.node_identity import node_keypair
from quanta.selectors import constellation_id

DUMP_NAME = "node.dump"
MANIFEST_NAME = "manifest.json"
PG_TOOL_TIMEOUT_S = 3600


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why and changes nothing."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, written beside the dump."""

    node: str
    constellation_id: str
    apex: int
    snapshot_apex: int
    dump_sha256: str


def node_key() -> str:
    """Returns this node's public key (G...), from its configured secret."""
    return encode_public_key(node_keypair().public_key)


def persisted_apex() -> int:
    """Returns the highest apex this node's database holds (0 when it holds none)."""
    return int(QuantumRecord.objects.aggregate(top=Max("apex"))["top"] or 0)


def backup_make(directory: Path) -> Manifest:
    """Writes a backup of this node's database into `directory` (created; must be empty)."""
    cid = constellation_id()
    if cid is None:
        raise BackupError("this node is not initialized: there is nothing to back up")
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty")
    snapshot = SnapshotRecord.objects.order_by("-apex").first()
    # Read before the dump: the dump, taken after, holds at least this apex.
    apex = persisted_apex()
    dump = directory / DUMP_NAME
    _pg_tool("pg_dump", "--format=custom", "--no-owner", f"--file={dump}")
    manifest = Manifest(
        node=node_key(),
        constellation_id=cid.hex(),
        apex=apex,
        snapshot_apex=0 if snapshot is None else int(snapshot.apex),
        dump_sha256=_file_sha256(dump),
    )
    (directory / MANIFEST_NAME).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def manifest_read(directory: Path) -> Manifest:
    """Returns a backup's manifest after checking its dump against it."""
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text())
        manifest = Manifest(**data)
    except (OSError, ValueError, TypeError) as error:
        raise BackupError(f"{directory} holds no readable {MANIFEST_NAME}: {error}") from None
    dump = directory / DUMP_NAME
    if not dump.is_file() or _file_sha256(dump) != manifest.dump_sha256:
        raise BackupError(f"{dump} is missing or does not match the manifest's hash")
    return manifest


def backup_restore(directory: Path, *, force: bool) -> Manifest:
    """Restores the backup in `directory` into this node's database; raises BackupError
    (having changed nothing) if it is another node's, damaged, or the database holds a chain
    and `force` is not given."""
    manifest = manifest_read(directory)
    if manifest.node != node_key():
        raise BackupError(
            f"the backup is of node {manifest.node}; this node is {node_key()}: "
            "restore a node's backup with that node's own secret"
        )
    held = persisted_apex() if QuantumRecord._meta.db_table in _tables() else 0
    if held and not force:
        raise BackupError(
            f"this node's database holds quanta up to apex {held}; restoring would replace "
            "them (use an empty database, or --force)"
        )
    connection.close()
    _pg_tool("pg_restore", "--clean", "--if-exists", "--no-owner", str(directory / DUMP_NAME))
    return manifest


def _tables() -> list[str]:
    with connection.cursor() as cursor:
        return list(connection.introspection.table_names(cursor))


def _pg_tool(tool: str, *args: str) -> None:
    database = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": str(database.get("PASSWORD") or "")}
    command = [
        tool,
        f"--host={database['HOST']}",
        f"--port={database['PORT']}",
        f"--username={database['USER']}",
        f"--dbname={database['NAME']}",
        *args,
    ]
    result = subprocess.run(  # noqa: S603 - PostgreSQL's own tools, arguments from settings
        command, env=env, capture_output=True, text=True, timeout=PG_TOOL_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise BackupError(f"{tool} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
