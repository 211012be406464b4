"""Remote DICOM nodes for the transfer tests: dcmtk's storescp as a send destination, and a remote PACS played
by pynetdicom that answers Study Root C-FIND and C-MOVE from the files it holds."""
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from pydicom import dcmread
from pynetdicom import AE, build_context, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelMove,
)

from archive.models import DicomNode
from tests.platform_process import free_port

READY_TIMEOUT = 10


def wait_for_port(port, timeout=READY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def register_node(ae_title, port, name=None):
    return DicomNode.objects.create(name=name or ae_title, ae_title=ae_title, host="127.0.0.1", port=port)


class StoreSCP:
    """dcmtk storescp writing what it receives into `folder`. `options` are extra storescp options, e.g. "+xa"
    to accept compressed transfer syntaxes or "--refuse" to refuse every association."""

    def __init__(self, folder, *options, ae_title="STORESCP", port=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.options = options
        self.ae_title = ae_title
        self.port = port or free_port()
        self.log_path = self.folder.parent / f"{self.folder.name}.log"
        self.process = None

    def start(self):
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            ["storescp", "-v", "+v", "-aet", self.ae_title, "--output-directory", str(self.folder), *self.options,
             str(self.port)],
            env={**os.environ, "TCP_NODELAY": "1"}, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def received(self):
        """{SOP Instance UID: dataset} of every file received so far."""
        datasets = (dcmread(path) for path in sorted(self.folder.iterdir()) if path.is_file())
        return {str(dataset.SOPInstanceUID): dataset for dataset in datasets}

    def log(self):
        return self.log_path.read_text()

    def associations(self):
        """How many associations storescp has accepted (its verbose log says so once per association)."""
        return self.log().count("Association Acknowledged")

    def calling_ae_titles(self):
        return re.findall(r"Calling Application Name:\s+(\S+)", self.log())


class RemotePACS:
    """A remote archive: answers Study Root C-FIND at STUDY level (matching PatientID, IssuerOfPatientID and
    StudyInstanceUID; universal matching for the rest) and C-MOVEs studies to the destinations it knows."""

    def __init__(self, files, destinations, ae_title="REMOTEPACS"):
        self.ae_title = ae_title
        self.port = free_port()
        self.destinations = destinations  # {AE title: (host, port)}
        self.datasets = [dcmread(path) for path in files]
        self.calling_ae_titles = []
        # The keys its C-FIND matches on; a real PACS may ignore some (PS3.4 C.2.2.1 optional keys).
        self.matching_keys = ("PatientID", "IssuerOfPatientID", "StudyInstanceUID")
        self._server = None

    def start(self):
        ae = AE(ae_title=self.ae_title)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        # The contexts of the C-MOVE sub-associations: each file goes in the transfer syntax it is stored in.
        contexts = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in self.datasets}
        ae.requested_contexts = [build_context(sop_class, [syntax]) for sop_class, syntax in sorted(contexts)]
        self._server = ae.start_server(
            ("127.0.0.1", self.port), block=False,
            evt_handlers=[(evt.EVT_C_FIND, self._find), (evt.EVT_C_MOVE, self._move)])
        return self

    def stop(self):
        self._server.shutdown()

    def studies(self):
        """One dataset per study: the first instance of it."""
        first = {}
        for dataset in self.datasets:
            first.setdefault(str(dataset.StudyInstanceUID), dataset)
        return first

    def _matches(self, identifier):
        for uid, dataset in self.studies().items():
            if all(not identifier.get(keyword) or str(identifier.get(keyword)) == str(dataset.get(keyword, ""))
                   for keyword in self.matching_keys):
                yield uid, dataset

    def _find(self, event):
        self.calling_ae_titles.append(event.assoc.requestor.ae_title)
        identifier = event.identifier
        if identifier.get("QueryRetrieveLevel") != "STUDY":
            yield 0xA900, None
            return
        for uid, dataset in self._matches(identifier):
            answer = type(identifier)()
            answer.QueryRetrieveLevel = "STUDY"
            for element in identifier:
                if element.keyword in dataset:
                    answer[element.tag] = dataset[element.tag]
            if "NumberOfStudyRelatedInstances" in identifier:
                answer.NumberOfStudyRelatedInstances = sum(
                    1 for ds in self.datasets if str(ds.StudyInstanceUID) == uid)
            answer.StudyInstanceUID = uid
            yield 0xFF00, answer

    def _move(self, event):
        self.calling_ae_titles.append(event.assoc.requestor.ae_title)
        destination = self.destinations.get(event.move_destination.strip())
        if destination is None:
            yield None, None  # pynetdicom answers 0xA801 Move Destination Unknown
            return
        yield destination
        uid = str(event.identifier.get("StudyInstanceUID", ""))
        instances = [ds for ds in self.datasets if str(ds.StudyInstanceUID) == uid]
        yield len(instances)
        for dataset in instances:
            yield 0xFF00, dataset


TRAILING_PADDING = 0xFFFCFFFC
PIXEL_DATA = 0x7FE00010


def differing_elements(received, archived):
    """Tags whose elements differ between two datasets, leaving out what a receiver may normalise: Data Set
    Trailing Padding, which has no meaning and may be dropped (PS3.10 7.2), and the VR of encapsulated Pixel
    Data, which PS3.5 A.4 says is OB (some of pydicom's bundled files carry OW)."""
    ours = {element.tag: element for element in archived if element.tag != TRAILING_PADDING}
    theirs = {element.tag: element for element in received if element.tag != TRAILING_PADDING}
    differing = []
    for tag in sorted(set(ours) | set(theirs)):
        if tag not in ours or tag not in theirs:
            differing.append(tag)
        elif tag == PIXEL_DATA:
            if ours[tag].value != theirs[tag].value:
                differing.append(tag)
        elif ours[tag] != theirs[tag]:
            differing.append(tag)
    return differing


class RecordingStoreSCP:
    """A pynetdicom storage SCP for the given SOP classes (every transfer syntax) that records, per association,
    the presentation contexts proposed to it and the transfer syntax each instance arrived in."""

    def __init__(self, sop_class_uids, ae_title="RECORDER"):
        self.ae_title = ae_title
        self.port = free_port()
        self.sop_class_uids = list(sop_class_uids)
        self.proposed = []  # per association: [(abstract syntax, (transfer syntaxes...))]
        self.received = {}  # SOP Instance UID -> transfer syntax UID
        # Set to a number to abort the association instead of answering the request that would exceed it.
        self.abort_after = None
        self._server = None

    def start(self):
        from pynetdicom import ALL_TRANSFER_SYNTAXES

        ae = AE(ae_title=self.ae_title)
        for sop_class_uid in self.sop_class_uids:
            ae.add_supported_context(sop_class_uid, ALL_TRANSFER_SYNTAXES)
        self._server = ae.start_server(
            ("127.0.0.1", self.port), block=False,
            evt_handlers=[(evt.EVT_REQUESTED, self._requested), (evt.EVT_C_STORE, self._store)])
        return self

    def stop(self):
        self._server.shutdown()

    def _requested(self, event):
        self.proposed.append([(str(cx.abstract_syntax), tuple(str(ts) for ts in cx.transfer_syntax))
                              for cx in event.assoc.requestor.requested_contexts])

    def _store(self, event):
        if self.abort_after is not None and len(self.received) >= self.abort_after:
            event.assoc.abort()
            return 0xA700
        self.received[str(event.request.AffectedSOPInstanceUID)] = str(event.context.transfer_syntax)
        return 0x0000
