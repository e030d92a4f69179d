"""``create_editor USERNAME``: a staff account in the Editors group."""

import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

EDITORS_GROUP = "Editors"
PASSWORD_ENV = "EDITOR_PASSWORD"  # noqa: S105 (a variable name, not a password)


class Command(BaseCommand):
    help = (
        "Create a staff user in the Editors group. The password is prompted for, or read from "
        f"${PASSWORD_ENV} with --noinput."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help=f"Do not prompt; take the password from ${PASSWORD_ENV}.",
        )

    def handle(self, *args, username, email, interactive, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} already exists.")
        try:
            group = Group.objects.get(name=EDITORS_GROUP)
        except Group.DoesNotExist:
            raise CommandError(
                f"The {EDITORS_GROUP} group is missing; run `manage.py migrate` first."
            ) from None
        password = self.prompt_password() if interactive else os.environ.get(PASSWORD_ENV)
        if not password:
            raise CommandError(f"Set ${PASSWORD_ENV} to the new editor's password.")
        candidate = User(username=username, email=email)
        try:
            validate_password(password, candidate)
        except ValidationError as error:
            raise CommandError("Password refused: " + " ".join(error.messages)) from None
        with transaction.atomic():
            user = User.objects.create_user(username, email, password, is_staff=True)
            user.groups.add(group)
        if options["verbosity"]:
            self.stdout.write(
                self.style.SUCCESS(f"Editor {username!r} created; they can sign in at /admin/.")
            )

    def prompt_password(self):
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The passwords did not match.")
        return password
