from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ShardFence",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("inbox", models.CharField(max_length=64)),
                ("shard", models.IntegerField()),
                ("token", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("inbox", "shard"), name="switchboard_shardfence_unique")
                ],
            },
        ),
    ]
