# Joins the three 0004s of issue 12 (in-flight constraint, left_behind, lease generation).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('provisioning', '0004_lease_generation'),
        ('provisioning', '0004_left_behind'),
        ('provisioning', '0004_one_in_flight_request_per_resource'),
    ]

    operations = [
    ]
