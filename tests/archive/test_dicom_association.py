"""Who may associate with the archive's DICOM listener, and the audit trail every association leaves."""
import socket

import pytest
from pynetdicom import evt
from pynetdicom.sop_class import CTImageStorage, Verification

from archive.dimse.listener import DicomListener
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from radiology.server import StartupError
from tests.archive.listener_peers import (
    associate, dcmtk, register_node,
)

pytestmark = pytest.mark.django_db(transaction=True)


def echo(listener, calling_ae, called_ae="RADIOLOGY"):
    return dcmtk("echoscu", "-aet", calling_ae, "-aec", called_ae, "127.0.0.1", str(listener.port))


def network_entries():
    return list(AuditEvent.objects.filter(code=AuditEventCode.NETWORK_ENTRY).order_by("id"))


def test_a_registered_node_is_answered_by_echoscu(listener):
    register_node("MODALITY1")
    result = echo(listener, "MODALITY1")
    assert result.returncode == 0, result.stderr
    assert "Received Echo Response (Success)" in result.stderr


def test_an_unknown_calling_ae_is_rejected_at_association_time(listener):
    result = echo(listener, "STRANGER")
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stderr


def test_a_wrong_called_ae_is_rejected(listener):
    register_node("MODALITY1")
    result = echo(listener, "MODALITY1", called_ae="SOMEONEELSE")
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stderr


def test_dicom_open_accepts_any_calling_ae(listener, settings):
    settings.DICOM_OPEN = True
    result = echo(listener, "STRANGER")
    assert result.returncode == 0, result.stderr


def test_a_node_added_while_the_listener_runs_is_accepted_on_its_next_association(listener):
    assert echo(listener, "LATECOMER").returncode != 0
    register_node("LATECOMER")
    assert echo(listener, "LATECOMER").returncode == 0


def test_a_removed_node_is_rejected_on_its_next_association(listener):
    node = register_node("LEAVING")
    assert echo(listener, "LEAVING").returncode == 0
    node.delete()
    assert echo(listener, "LEAVING").returncode != 0


def test_an_accepted_association_is_audited_as_a_network_entry_from_the_peer(listener):
    register_node("MODALITY1")
    echo(listener, "MODALITY1")
    [entry] = network_entries()
    assert (entry.channel, entry.actor, entry.source_address, entry.outcome) == (
        AuditChannel.DICOM, "MODALITY1", "127.0.0.1", AuditOutcome.SUCCESS)
    assert entry.detail["called_ae"] == "RADIOLOGY"
    assert entry.detail["result"] == "accepted"


def test_a_rejected_association_is_audited_as_a_failure_with_its_reason(listener):
    echo(listener, "STRANGER")
    [entry] = network_entries()
    assert (entry.actor, entry.outcome) == ("STRANGER", AuditOutcome.MINOR_FAILURE)
    assert entry.detail["reason"] == "calling AE title not recognised"


def test_an_association_that_stores_nothing_leaves_no_transfer_event(listener):
    register_node("MODALITY1")
    echo(listener, "MODALITY1")
    assert not AuditEvent.objects.filter(code=AuditEventCode.DICOM_INSTANCES_TRANSFERRED).exists()


def test_accepted_connections_have_nagle_switched_off(listener):
    register_node("MODALITY1")
    seen = []

    def record_nodelay(event):
        seen.append(event.assoc.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    listener._server.bind(evt.EVT_ACCEPTED, record_nodelay)
    try:
        association = associate(listener, [Verification])
        assert association.is_established
        association.release()
    finally:
        listener._server.unbind(evt.EVT_ACCEPTED, record_nodelay)
    assert seen and seen[0] != 0


def test_storage_and_verification_contexts_are_accepted_but_unknown_abstract_syntaxes_are_not(listener):
    register_node("MODALITY1")
    association = associate(listener, [Verification, CTImageStorage, "1.2.3.4.5.6"])
    try:
        accepted = {context.abstract_syntax for context in association.accepted_contexts}
        assert accepted == {Verification, CTImageStorage}
    finally:
        association.release()


def test_a_port_already_in_use_is_refused_with_one_clear_line(tmp_path, settings):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(StartupError, match=f"DICOM listener could not listen on 127.0.0.1:{port}"):
            DicomListener(host="127.0.0.1", port=port).start()
