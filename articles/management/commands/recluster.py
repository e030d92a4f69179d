"""``manage.py recluster``: rebuild every story cluster from scratch."""

from django.core.management.base import BaseCommand

from articles import clustering, versioning


class Command(BaseCommand):
    help = (
        "Regroup every story into clusters from scratch (editors' merges and splits "
        "still apply) and recompute every cluster's lead, counts, score and topics."
    )

    def handle(self, *args, verbosity=1, **options):
        changed = clustering.recluster()
        if changed:
            versioning.bump()
        if verbosity >= 1:
            self.stdout.write(f"Clusters rebuilt: {changed} changed membership.")
