"""The archive's DICOM network services (DIMSE, PS3.7) on pynetdicom.

listener.py: the application entity, who may associate and do what, the `dicom` component of `serve`;
storage.py: Verification, Storage and Storage Commitment handlers;
query_retrieve.py: C-FIND, C-MOVE and C-GET handlers.
"""
