"""Offline speech-to-text with CMU PocketSphinx and the bundled radiology vocabulary.

The pocketsphinx wheel ships the US-English acoustic model and the CMU pronouncing dictionary, so nothing is
downloaded at run time. Its general English language model gets few radiology words right, so recognition here
uses a language model built from the radiology phrases in vocabulary/corpus.txt (with the voice commands and the
dictating user's macro names), and a dictionary of just those words: their CMU pronunciations plus
vocabulary/radiology.dict for the words CMU lacks (pneumothorax, atelectasis, cardiomegaly, mediastinum, …).

The language model is a trigram back-off model made by pocketsphinx's own ARPA builder (pocketsphinx.lm); with a
few hundred phrases that takes milliseconds, and a decoder over a small dictionary loads in tens of
milliseconds, so both are made afresh for every transcription: no decoder is shared between worker threads.
Long recordings are cut into utterances at pauses (pocketsphinx's voice activity endpointer), each decoded on
its own.
"""
import re
import tempfile
import threading
from io import StringIO
from pathlib import Path

from reporting.dictation.backends import SpeechToText, TranscriptionFailed

VOCABULARY_DIR = Path(__file__).resolve().parent / "vocabulary"
CORPUS = VOCABULARY_DIR / "corpus.txt"
RADIOLOGY_DICTIONARY = VOCABULARY_DIR / "radiology.dict"
# Recordings up to this long are decoded as one utterance; longer ones are cut at pauses.
SINGLE_UTTERANCE_SECONDS = 20
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_VARIANT = re.compile(r"\(\d+\)$")


def pronunciations():
    """word → list of dictionary lines ("word PH O N E S", "word(2) …"): CMU's, then the radiology additions
    (which win where both have the word). Loaded once per process."""
    with _lock:
        if not _pronunciations:
            from pocketsphinx import get_model_path

            for path in (Path(get_model_path("en-us/cmudict-en-us.dict")), RADIOLOGY_DICTIONARY):
                own = {}
                for line in path.read_text(encoding="utf-8").splitlines():
                    if not line.strip() or line.startswith("#"):
                        continue
                    word = _VARIANT.sub("", line.split(maxsplit=1)[0])
                    own.setdefault(word, []).append(line.strip())
                _pronunciations.update(own)
    return _pronunciations


_pronunciations = {}
_lock = threading.Lock()


def corpus_lines(phrases=()):
    """The sentences the language model is built from: the bundled corpus, then "insert macro <phrase>" for each
    phrase whose words all have a pronunciation (others cannot be recognised and are left out)."""
    lines = [line.strip() for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    known = pronunciations()
    for phrase in phrases:
        words = _WORD.findall(str(phrase).lower())
        if words and all(word in known for word in words):
            lines.append("insert macro " + " ".join(words))
    return lines


def language_model(lines):
    """An ARPA trigram back-off language model of `lines`, as text."""
    from pocketsphinx.lm import ArpaBoLM

    builder = ArpaBoLM(text="\n".join(lines), add_start=True)
    builder.compute()
    out = StringIO()
    builder.write(out)
    return out.getvalue()


def dictionary(lines):
    """Pronunciation dictionary text for the words of `lines`. A word with none raises ValueError (the bundled
    corpus is checked by a test; macro phrases are filtered before they get here)."""
    known = pronunciations()
    words = sorted({word for line in lines for word in line.split()})
    missing = [word for word in words if word not in known]
    if missing:
        raise ValueError(f"no pronunciation for: {', '.join(missing)}")
    return "\n".join(entry for word in words for entry in known[word]) + "\n"


class PocketsphinxSpeechToText(SpeechToText):
    name = "pocketsphinx"

    def transcribe(self, pcm, *, phrases=()):
        from pocketsphinx import Decoder, Endpointer

        lines = corpus_lines(phrases)
        with tempfile.TemporaryDirectory(prefix="dictation-") as folder:
            lm_path, dict_path = Path(folder) / "radiology.lm", Path(folder) / "radiology.dict"
            lm_path.write_text(language_model(lines), encoding="utf-8")
            dict_path.write_text(dictionary(lines), encoding="utf-8")
            try:
                decoder = Decoder(samprate=16000, lm=str(lm_path), dict=str(dict_path), loglevel="FATAL")
            except (RuntimeError, ValueError) as exc:
                raise TranscriptionFailed(f"pocketsphinx could not load the radiology vocabulary: {exc}") from exc
            if len(pcm) <= SINGLE_UTTERANCE_SECONDS * 16000 * 2:
                return _decode(decoder, [pcm])
            return _decode(decoder, _utterances(Endpointer(), pcm))


def _decode(decoder, utterances):
    words = []
    for speech in utterances:
        decoder.start_utt()
        decoder.process_raw(speech, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is not None and hypothesis.hypstr:
            words.append(hypothesis.hypstr)
    return " ".join(words).strip()


def _utterances(endpointer, pcm):
    """The spoken stretches of a long recording, cut at pauses."""
    current = []
    step = endpointer.frame_bytes
    for start in range(0, len(pcm) - len(pcm) % step, step):
        speech = endpointer.process(pcm[start:start + step])
        if speech is not None:
            current.append(speech)
            if not endpointer.in_speech:
                yield b"".join(current)
                current = []
    if endpointer.in_speech:  # the recording stopped mid-sentence
        tail = endpointer.end_stream(pcm[len(pcm) - len(pcm) % step:])
        if tail is not None:
            current.append(tail)
    if current:
        yield b"".join(current)
