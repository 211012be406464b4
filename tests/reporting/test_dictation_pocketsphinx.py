"""The offline pocketsphinx backend with the bundled radiology vocabulary gets most words of dictated radiology
right. The speech is espeak-ng's: a committed recording, and (where espeak-ng is installed, as .ci/run does)
sentences synthesised on the spot and sent through the same upload conversion as a browser's recording."""
import io
import shutil
import subprocess

import pytest

from reporting.dictation import audio, pocketsphinx_backend
from reporting.dictation.backends import get_backend
from tests.reporting.dictation_support import EFFUSION_WAV, EFFUSION_WORDS, words_right

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def transcribe_wav(data, phrases=()):
    upload = io.BytesIO(data)
    upload.size = len(data)
    return get_backend("pocketsphinx").transcribe(audio.read_upload(upload).pcm, phrases=phrases)


def spoken(text):
    """`text` spoken by espeak-ng (US English, 150 words a minute) as WAV bytes, at espeak's own 22050 Hz."""
    return subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", text], check=True,
                          capture_output=True, timeout=60).stdout


def test_the_committed_dictation_is_mostly_transcribed_right():
    heard = transcribe_wav(EFFUSION_WAV.read_bytes())

    # Measured: 6 of 9 words ("small left pleural effusion with basal" right; espeak-ng mispronounces
    # "atelectasis", which takes "no pneumothorax" with it in this sentence).
    assert words_right(EFFUSION_WORDS, heard) / len(EFFUSION_WORDS.split()) >= 0.6, heard


@needs_espeak
@pytest.mark.parametrize("sentence", [
    "no focal consolidation or pneumothorax",
    "the costophrenic angles are clear the heart size is normal",
])
def test_sentences_spoken_now_are_mostly_transcribed_right(sentence):
    heard = transcribe_wav(spoken(sentence))

    assert words_right(sentence, heard) / len(sentence.split()) >= 0.6, heard


@needs_espeak
def test_the_users_macro_names_are_recognised_after_insert_macro():
    assert transcribe_wav(spoken("insert macro normal knee"), phrases=["Normal knee"]) == "insert macro normal knee"


def test_every_word_of_the_vocabulary_has_a_pronunciation():
    lines = pocketsphinx_backend.corpus_lines()

    pocketsphinx_backend.dictionary(lines)  # raises ValueError naming any word without one


def test_the_radiology_words_cmu_lacks_are_added():
    added = pocketsphinx_backend.RADIOLOGY_DICTIONARY.read_text().split()
    for word in ("pneumothorax", "effusion", "atelectasis", "cardiomegaly", "mediastinum", "radiograph"):
        assert word in added


def test_macro_names_with_words_it_cannot_pronounce_are_left_out_of_the_vocabulary():
    lines = pocketsphinx_backend.corpus_lines(["Normal knee", "Xyzzyq plugh"])

    assert "insert macro normal knee" in lines
    assert not any("xyzzyq" in line for line in lines)


def test_a_long_recording_is_cut_at_pauses_and_every_part_transcribed():
    sentence = EFFUSION_WAV.read_bytes()
    upload = io.BytesIO(sentence)
    upload.size = len(sentence)
    pcm = audio.read_upload(upload).pcm
    pause = b"\x00\x00" * 16000
    long_recording = (pcm + pause) * 6  # about 33 s: over the single-utterance length

    heard = get_backend("pocketsphinx").transcribe(long_recording)

    assert heard.count("pleural effusion") == 6, heard
