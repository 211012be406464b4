"""How many words pocketsphinx gets right with the radiology vocabulary, against its own general English model.

    python -m reporting.dictation.accuracy

Ten radiology sentences (none of them verbatim in vocabulary/corpus.txt) are spoken by espeak-ng (US English,
150 words a minute), converted as an upload is (reporting.dictation.audio) and transcribed both ways; a word counts
as right when the word alignment of transcript and sentence matches it. Needs espeak-ng (`apt-get install
espeak-ng`). The figures are in docs/reporting.md, "Dictation".
"""
import io
import os
import subprocess
import sys

SENTENCES = [
    "small left pleural effusion with basal atelectasis no pneumothorax",
    "mild cardiomegaly the mediastinum is not widened",
    "compared with the previous radiograph there is a new right pleural effusion",
    "no focal consolidation or pneumothorax",
    "the endotracheal tube tip is above the carina",
    "patchy consolidation in the left lower lobe in keeping with pneumonia",
    "no intracranial hemorrhage or mass effect",
    "the liver is normal in size no biliary dilatation",
    "moderate right pleural effusion with compressive atelectasis",
    "the costophrenic angles are clear the heart size is normal",
]


def words_right(expected, heard):
    """The number of words of `expected` that `heard` has, in order (longest common subsequence of words)."""
    ref, hyp = expected.split(), heard.lower().split()
    best = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            best[i][j] = max(best[i - 1][j], best[i][j - 1], best[i - 1][j - 1] + (ref[i - 1] == hyp[j - 1]))
    return best[len(ref)][len(hyp)]


def spoken(sentence):
    return subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", sentence], check=True,
                          capture_output=True, timeout=60).stdout


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "radiology.settings")
    import django

    django.setup()
    from pocketsphinx import Decoder

    from reporting.dictation import audio
    from reporting.dictation.backends import get_backend

    radiology, general = get_backend("pocketsphinx"), Decoder(samprate=16000, loglevel="FATAL")
    totals = {"radiology vocabulary": 0, "pocketsphinx general English": 0}
    count = 0
    for sentence in SENTENCES:
        data = spoken(sentence)
        upload = io.BytesIO(data)
        upload.size = len(data)
        pcm = audio.read_upload(upload).pcm
        general.start_utt()
        general.process_raw(pcm, full_utt=True)
        general.end_utt()
        heard = {"radiology vocabulary": radiology.transcribe(pcm),
                 "pocketsphinx general English": general.hyp().hypstr if general.hyp() else ""}
        count += len(sentence.split())
        for name, text in heard.items():
            totals[name] += words_right(sentence, text)
        print(f"{sentence}\n    heard: {heard['radiology vocabulary']}")
    for name, right in totals.items():
        print(f"{name}: {right} of {count} words right ({100 * right / count:.0f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
