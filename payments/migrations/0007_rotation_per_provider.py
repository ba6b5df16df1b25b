"""A rotation row per provider and settings update (one update now rotates every kept vault):
the apex is no longer the key. The rows of the old table are copied over."""

import exchange.fields
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def copy_rows(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    old = apps.get_model("payments", "RotationRecordOld")
    new = apps.get_model("payments", "RotationRecord")
    for row in old.objects.all():
        new.objects.create(
            apex=row.apex,
            provider=row.provider,
            transaction=row.transaction,
            old_signers=row.old_signers,
            old_threshold=row.old_threshold,
            expiry_ms=row.expiry_ms,
            signatures=row.signatures,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0006_rotation_record"),
    ]

    operations = [
        migrations.RenameModel("RotationRecord", "RotationRecordOld"),
        migrations.CreateModel(
            name="RotationRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("apex", exchange.fields.U64Field()),
                ("provider", models.CharField(max_length=140)),
                ("transaction", models.BinaryField()),
                (
                    "old_signers",
                    models.BinaryField(help_text="the old signers' 32-byte keys, concatenated"),
                ),
                ("old_threshold", models.PositiveIntegerField()),
                ("expiry_ms", models.BigIntegerField()),
                (
                    "signatures",
                    models.JSONField(default=dict, help_text="signer hex -> signature hex"),
                ),
            ],
            options={
                "ordering": ["apex", "provider"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("apex", "provider"), name="rotation_apex_provider"
                    )
                ],
            },
        ),
        migrations.RunPython(copy_rows, migrations.RunPython.noop),
        migrations.DeleteModel("RotationRecordOld"),
    ]
