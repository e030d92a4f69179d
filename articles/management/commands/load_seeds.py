"""``manage.py load_seeds [PATH ...]``: load news, topic and organization files."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from articles import loader


class Command(BaseCommand):
    help = (
        "Load news files (--- YAML front matter ---), topic files and organization files "
        "from files and folders (recursively: .md, .txt, .yaml, .yml). Default: seeds/."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders")
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="print the summary as one JSON object on the last line",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and count without storing anything"
        )

    def handle(self, *args, paths, as_json=False, dry_run=False, verbosity=1, **options):
        paths = paths or [str(settings.BASE_DIR / "seeds")]
        try:
            loader.check_paths(paths)
        except loader.UnusablePath as exc:
            raise CommandError(str(exc), returncode=2) from None
        bar = None
        if verbosity >= 1 and self.stderr.isatty():
            bar = tqdm(total=loader.count_files(paths), unit="file", file=self.stderr._out)
        try:
            result = loader.load(paths, dry_run=dry_run, progress=bar.update if bar else None)
        except DatabaseError as exc:
            raise CommandError(
                f"the database cannot be used ({exc}); has `manage.py migrate` run?"
            ) from None
        finally:
            if bar:
                bar.close()
        for problem in result.errors:
            self.stderr.write(str(problem))
        if verbosity >= 2:
            for problem in result.warnings:
                self.stderr.write(f"{problem} (warning)")
        summary = result.summary() + (" (dry run: nothing stored)" if dry_run else "")
        self.stdout.write(summary)
        if as_json:
            self.stdout.write(json.dumps({**result.as_dict(), "dry_run": dry_run}))
        if result.failed:
            noun = "file" if result.failed == 1 else "files"
            raise CommandError(f"{result.failed} {noun} could not be loaded", returncode=1)
