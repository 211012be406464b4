from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from reporting.mrrt import MAX_BYTES, MRRTError, import_mrrt
from worklist.models import ProcedureType


class Command(BaseCommand):
    help = ("Import IHE MRRT report templates (HTML5, as in RSNA's RadReport library) as report templates. "
            "Files that are not valid MRRT are refused with the reason; the others are imported.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="MRRT .html files, or folders of them")
        parser.add_argument("--modality", default="", help="Use the templates for this modality (e.g. CT).")
        parser.add_argument("--procedure", default="", help="Use the templates for this procedure code.")
        parser.add_argument("--replace", action="store_true",
                            help="Update templates already imported (same dcterms.identifier).")

    def handle(self, *args, paths, modality, procedure, replace, **options):
        procedure_type = None
        if procedure:
            procedure_type = ProcedureType.objects.filter(code=procedure).first()
            if procedure_type is None:
                raise CommandError(f"no procedure with code {procedure!r} in the catalogue")
        files = []
        for given in paths:
            path = Path(given)
            if path.is_dir():
                files += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".html", ".htm") and p.is_file())
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{given}: no such file or folder")
        refused = 0
        for path in files:
            try:
                if path.stat().st_size > MAX_BYTES:
                    raise MRRTError(f"the file is larger than {MAX_BYTES} bytes")
                template = import_mrrt(path.read_bytes(), modality=modality.upper(), procedure=procedure_type,
                                       replace=replace)
            except MRRTError as exc:
                refused += 1
                self.stderr.write(f"{path}: refused: {exc}")
                continue
            self.stdout.write(f"{path}: imported \u201c{template.name}\u201d ({len(template.sections)} sections, "
                              f"template {template.pk})")
        self.stdout.write(f"{len(files) - refused} imported, {refused} refused.")
        if refused:
            raise CommandError(f"{refused} file(s) refused")
