"""Prefetching a patient's prior studies from other archives, so they are here when the new study is read.

The RIS calls `prefetch_priors` when an order is scheduled (or `archive.tasks.prefetch_priors_for_patient` to do
it in the background). Each node is asked with a Study Root C-FIND at STUDY level by Patient ID and, when the
patient has one, Issuer of Patient ID (PS3.4 C.6.2.1.2); every study we do not hold is pulled with C-MOVE.
"""
import logging

from archive import scu
from archive.choices import TransferKind, TransferStatus
from archive.dicom_values import integer, text, valid_uid
from archive.models import Study, TransferJob
from archive.transfers import request_pull

logger = logging.getLogger(__name__)

PREFETCH_REASON = "prefetch"


def prefetch_priors(patient, nodes, *, user=None, modality="", body_part=""):
    """Queue a pull of every study of `patient` that a node in `nodes` holds and this archive does not (or holds
    fewer instances of than the node reports). A study offered by several nodes is pulled from the first.
    Studies of `modality` and naming `body_part` in their description are queued first: they are the priors a
    radiologist compares with. A node that cannot be queried is logged and skipped. Returns the new
    TransferJobs."""
    keys = {"PatientID": patient.mrn}
    if patient.issuer:
        keys["IssuerOfPatientID"] = patient.issuer
    candidates = []
    considered = set()
    for node in nodes:
        try:
            matches = scu.find_studies(node, **keys)
        except scu.DicomPeerError as exc:
            logger.warning("prefetch for patient %s: cannot query %s: %s", patient.pk, node.ae_title, exc)
            continue
        for match in matches:
            study_instance_uid = text(match, "StudyInstanceUID")
            if not valid_uid(study_instance_uid) or study_instance_uid in considered:
                continue
            if not _same_patient(match, patient):
                continue
            considered.add(study_instance_uid)
            if _held_locally(study_instance_uid, integer(match, "NumberOfStudyRelatedInstances")):
                continue
            if _pull_pending(study_instance_uid):
                continue
            candidates.append((_relevance(match, modality, body_part), len(candidates), node, study_instance_uid))
    jobs = [request_pull(node, study_instance_uid, user=user, reason=PREFETCH_REASON)
            for _, _, node, study_instance_uid in sorted(candidates, key=lambda item: item[:2])]
    logger.info("prefetch for patient %s: %d studies to pull", patient.pk, len(jobs))
    return jobs


def _relevance(match, modality, body_part):
    """0 for the most relevant prior (same modality and body part), 2 for the least."""
    modalities = (match.get("ModalitiesInStudy") or "")
    modalities = [modalities] if isinstance(modalities, str) else list(modalities)
    same_modality = bool(modality) and modality in modalities
    same_body_part = bool(body_part) and body_part.upper() in text(match, "StudyDescription").upper()
    return 2 - same_modality - same_body_part


def _same_patient(match, patient):
    """Nodes may ignore matching keys they do not support (PS3.4 C.2.2.1: optional keys), so check the answer:
    the Patient ID must be ours, and an issuer, when the node returns one, too."""
    if text(match, "PatientID") and text(match, "PatientID") != patient.mrn:
        return False
    issuer = text(match, "IssuerOfPatientID")
    return not (issuer and patient.issuer and issuer != patient.issuer)


def _held_locally(study_instance_uid, remote_instances):
    study = Study.objects.filter(study_instance_uid=study_instance_uid).only("number_of_instances").first()
    if study is None:
        return False
    return remote_instances is None or study.number_of_instances >= remote_instances


def _pull_pending(study_instance_uid):
    return TransferJob.objects.filter(
        kind=TransferKind.PULL, study_instance_uid=study_instance_uid,
        status__in=[TransferStatus.QUEUED, TransferStatus.RUNNING]).exists()
