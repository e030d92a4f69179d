"""``manage.py evaluate_clusters [LABELS]``: pairwise precision and recall against hand labels."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from articles.clustering_evaluation import LabelError, Score, evaluate, read_labels

DEFAULT_LABELS = settings.BASE_DIR / "tests" / "data" / "cluster_labels.json"


class Command(BaseCommand):
    help = (
        "Score the current clusters against hand labels (default tests/data/"
        "cluster_labels.json) as pairwise precision and recall on same-event pairs. "
        "Load the labelled files first; stories that are not loaded are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("labels", nargs="?", default=str(DEFAULT_LABELS))

    def handle(self, *args, labels, verbosity=1, **options):
        try:
            results = evaluate(read_labels(labels))
        except LabelError as exc:
            raise CommandError(str(exc)) from None
        total = Score()
        for name, result in results.items():
            if not result.stories:
                self.stdout.write(f"{name}: no labelled story is loaded")
                continue
            self.stdout.write(f"{name}: {self.line(result)}")
            for field in ("true_pairs", "predicted_pairs", "correct_pairs", "stories"):
                setattr(total, field, getattr(total, field) + getattr(result, field))
            if verbosity >= 2:
                for a, b in result.false_merges:
                    self.stdout.write(f"  wrongly together: {a!r} / {b!r}")
                for a, b in result.misses:
                    self.stdout.write(f"  wrongly apart:    {a!r} / {b!r}")
        if not total.stories:
            raise CommandError("No labelled story is loaded: run load_seeds on the labelled files.")
        self.stdout.write(f"all: {self.line(total)}")

    @staticmethod
    def line(result):
        return (
            f"precision {result.precision:.3f} ({result.correct_pairs}/{result.predicted_pairs}), "
            f"recall {result.recall:.3f} ({result.correct_pairs}/{result.true_pairs}), "
            f"{result.stories} stories"
        )
