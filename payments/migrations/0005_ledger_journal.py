"""The local ledger's journal: entries numbered in commit order (`LedgerTransfer.position`).

Existing entries keep their id as their position (they are all committed, and the providers'
cursors already name ids), and the journal's head starts after the last of them."""

from django.db import migrations, models

LEDGER = {"model_name": "ledgertransfer"}


def positions_from_ids(apps, schema_editor):  # type: ignore[no-untyped-def]
    alias = schema_editor.connection.alias
    transfer = apps.get_model("payments", "LedgerTransfer")
    journal = apps.get_model("payments", "LedgerJournal")
    transfer.objects.using(alias).update(position=models.F("id"))
    last = transfer.objects.using(alias).aggregate(last=models.Max("id"))["last"] or 0
    journal.objects.using(alias).create(id=1, position=last)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0004_u64_columns"),
    ]

    operations = [
        migrations.CreateModel(
            name="LedgerJournal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="ledgertransfer",
            name="position",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunPython(positions_from_ids, migrations.RunPython.noop, hints=LEDGER),
        migrations.AlterField(
            model_name="ledgertransfer",
            name="position",
            field=models.BigIntegerField(unique=True),
        ),
        migrations.AlterModelOptions(
            name="ledgertransfer",
            options={"ordering": ["position"]},
        ),
    ]
