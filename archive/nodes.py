"""Registering remote DICOM nodes (command line, admin). The listener reads them on every association."""
import re

from archive.models import DicomNode

# PS3.5 6.2: AE titles are up to 16 characters of the default repertoire without backslash or control chars.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,255}$")


class NodeError(Exception):
    pass


def clean_ae_title(value):
    value = (value or "").strip()
    if not _AE_TITLE.match(value):
        raise NodeError(f"invalid AE title {value!r}: 1-16 printable ASCII characters, no backslash")
    return value


def register_node(*, name, ae_title, host, port):
    """Add a node, or update the one with the same AE title. Returns (node, created)."""
    ae_title = clean_ae_title(ae_title)
    if not _HOST.match(host or ""):
        raise NodeError(f"invalid host {host!r}")
    if not 1 <= int(port) <= 65535:
        raise NodeError(f"invalid port {port}: must be 1-65535")
    if not (name or "").strip():
        raise NodeError("a node needs a name")
    return DicomNode.objects.update_or_create(
        ae_title=ae_title, defaults={"name": name.strip(), "host": host, "port": int(port)})


def remove_node(ae_title):
    deleted, _ = DicomNode.objects.filter(ae_title=(ae_title or "").strip()).delete()
    if not deleted:
        raise NodeError(f"no node with AE title {ae_title!r}")
