"""The inbox command that stored a notification, so a redo after a shard handover stores it once."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notification", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="command",
            field=models.CharField(blank=True, max_length=40, null=True, unique=True),
        ),
    ]
