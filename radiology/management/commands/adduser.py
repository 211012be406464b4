import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from radiology.choices import Role
from radiology.roles import assign_role


class Command(BaseCommand):
    help = "Create or update a user with one role; the password is read as one line from standard input."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(Role.values)}")
        parser.add_argument("--email", default=None)
        parser.add_argument("--password-stdin", action="store_true",
                            help="read the password as one line from standard input")

    def handle(self, *args, username, role, email, password_stdin, **options):
        if role not in Role.values:
            raise CommandError(f"unknown role {role!r}; valid roles: {', '.join(Role.values)}")
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("no password on standard input")

        User = get_user_model()
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("password refused: " + " ".join(exc.messages)) from None
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            if email is not None:
                user.email = email
            user.save()
            assign_role(user, role)
        self.stdout.write(f"{'created' if created else 'updated'} {role} {username}")
