from django.core.management.base import BaseCommand, CommandError

from archive.nodes import NodeError, register_node, remove_node
from archive.models import DicomNode


class Command(BaseCommand):
    help = "Register, list or remove remote DICOM nodes (allowed to store and query; C-MOVE destinations)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="register a node, or update the one with this AE title")
        add.add_argument("--name", required=True)
        add.add_argument("--aet", required=True, help="AE title (1-16 characters)")
        add.add_argument("--host", required=True)
        add.add_argument("--port", required=True, type=int)
        actions.add_parser("list", help="list registered nodes")
        remove = actions.add_parser("remove", help="remove the node with this AE title")
        remove.add_argument("--aet", required=True)

    def handle(self, *args, action, **options):
        try:
            if action == "add":
                node, created = register_node(
                    name=options["name"], ae_title=options["aet"], host=options["host"], port=options["port"])
                self.stdout.write(f"{'added' if created else 'updated'} {node}")
            elif action == "remove":
                remove_node(options["aet"])
                self.stdout.write(f"removed {options['aet']}")
            else:
                self._list()
        except NodeError as exc:
            raise CommandError(str(exc)) from None

    def _list(self):
        nodes = DicomNode.objects.all()
        if not nodes:
            self.stdout.write("no DICOM nodes registered")
            return
        self.stdout.write(f"{'AE title':<17}{'host':<30}{'port':>6}  name")
        for node in nodes:
            self.stdout.write(f"{node.ae_title:<17}{node.host:<30}{node.port:>6}  {node.name}")
