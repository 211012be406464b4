"""`manage.py dicomnode add|list|remove`."""
import io

import pytest
from django.core.management import CommandError, call_command

from archive.models import DicomNode

pytestmark = pytest.mark.django_db


def dicomnode(*args):
    out = io.StringIO()
    call_command("dicomnode", *args, stdout=out)
    return out.getvalue()


def test_add_registers_a_node():
    output = dicomnode("add", "--name", "CT scanner", "--aet", "CT01", "--host", "127.0.0.1", "--port", "104")
    node = DicomNode.objects.get(ae_title="CT01")
    assert (node.name, node.host, node.port) == ("CT scanner", "127.0.0.1", 104)
    assert output.startswith("added")


def test_adding_the_same_ae_title_again_updates_it():
    dicomnode("add", "--name", "old", "--aet", "PACS2", "--host", "127.0.0.1", "--port", "104")
    output = dicomnode("add", "--name", "new", "--aet", "PACS2", "--host", "127.0.0.2", "--port", "11112")
    assert DicomNode.objects.count() == 1
    assert DicomNode.objects.get().port == 11112
    assert output.startswith("updated")


def test_list_shows_every_node():
    dicomnode("add", "--name", "A", "--aet", "AAA", "--host", "127.0.0.1", "--port", "1")
    dicomnode("add", "--name", "B", "--aet", "BBB", "--host", "127.0.0.1", "--port", "2")
    output = dicomnode("list")
    assert "AAA" in output and "BBB" in output


def test_remove_deletes_the_node():
    dicomnode("add", "--name", "A", "--aet", "AAA", "--host", "127.0.0.1", "--port", "1")
    dicomnode("remove", "--aet", "AAA")
    assert not DicomNode.objects.exists()


def test_removing_an_unknown_node_is_an_error():
    with pytest.raises(CommandError, match="no node with AE title 'NOPE'"):
        dicomnode("remove", "--aet", "NOPE")


@pytest.mark.parametrize("aet", ["THIS_IS_MORE_THAN_16", "BACK\\SLASH", ""])
def test_an_invalid_ae_title_is_refused(aet):
    with pytest.raises(CommandError, match="invalid AE title"):
        dicomnode("add", "--name", "x", "--aet", aet, "--host", "127.0.0.1", "--port", "104")


def test_an_invalid_port_is_refused():
    with pytest.raises(CommandError, match="invalid port"):
        dicomnode("add", "--name", "x", "--aet", "X", "--host", "127.0.0.1", "--port", "70000")
