"""DICOM status codes the archive answers with (PS3.4 B.2.3 for Storage, PS3.7 C for the general ones)."""

SUCCESS = 0x0000
# Warnings (PS3.4 B.2.3)
COERCION_OF_DATA_ELEMENTS = 0xB000
ELEMENTS_DISCARDED = 0xB006  # also: a second, different copy of a stored instance was discarded
# Failures
DUPLICATE_SOP_INSTANCE = 0x0111  # PS3.7 C.5.8
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900  # Data Set does not match SOP Class (missing or invalid UIDs)
CANNOT_UNDERSTAND = 0xC000
MOVE_DESTINATION_UNKNOWN = 0xA801


def is_warning(code):
    return code in (0x0001, 0x0107, 0x0116) or 0xB000 <= code <= 0xBFFF
