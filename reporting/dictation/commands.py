"""Voice commands in a transcript, and the text between them, as an ordered list of segments for the editor.

    "next field" / "previous field"   move the cursor to the next / previous report section or field
    "insert macro <name>"             insert the text of the user's macro (personal first, then shared) by name
    "sign report"                     ask the editor to open the signing dialog: the radiologist still confirms
                                      and gives their credentials; a voice command never signs anything
    "full stop", "comma"              punctuation
    "new line", "new paragraph"       line breaks

parse(transcript, macros) returns segments such as
    [{"type": "text", "text": "Small left pleural effusion."},
     {"type": "command", "command": "next_field"},
     {"type": "command", "command": "insert_macro", "name": "normal chest", "text": "…"},
     {"type": "command", "command": "sign_report", "needs_confirmation": True}]
which the editor applies in order at the cursor. A macro name that matches none of the user's macros gives an
insert_macro command with an `error` and no text, so the page can say so instead of typing the words.
"""
import re

from django.db.models import Q

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

# Spoken words → (command, arguments). Longer phrases are tried first.
COMMANDS = {
    ("next", "field"): "next_field",
    ("previous", "field"): "previous_field",
    ("sign", "report"): "sign_report",
}
PUNCTUATION = {
    ("full", "stop"): ".",
    ("comma",): ",",
    ("new", "line"): "\n",
    ("new", "paragraph"): "\n\n",
}
INSERT_MACRO = ("insert", "macro")


def spoken_form(name):
    """A macro name as it is spoken and as recognisers write it: lower-case words, no punctuation."""
    return tuple(_WORD.findall(str(name).lower()))


def macros_for(user):
    """spoken form → macro for the macros `user` may insert; a personal macro hides a shared one of the same name."""
    from reporting.models import Macro

    found = {}
    for macro in Macro.objects.filter(Q(owner=user) | Q(owner__isnull=True)).order_by("owner_id"):
        form = spoken_form(macro.name)
        if form and (form not in found or macro.owner_id is not None):
            found[form] = macro
    return found


def parse(transcript, macros=None):
    """The segments of `transcript`; `macros` maps spoken forms to objects with `.name` and `.text`."""
    macros = macros or {}
    words = _WORD.findall(str(transcript).lower())
    segments = []
    text = []  # words and punctuation of the text segment being built

    def flush():
        if text:
            segments.append({"type": "text", "text": _join(text)})
            text.clear()

    position = 0
    while position < len(words):
        window = tuple(words[position:position + 2])
        if window == INSERT_MACRO:
            flush()
            position += 2
            segment, used = _macro(words[position:], macros)
            segments.append(segment)
            position += used
            continue
        command = COMMANDS.get(window)
        if command:
            flush()
            segment = {"type": "command", "command": command}
            if command == "sign_report":
                segment["needs_confirmation"] = True
            segments.append(segment)
            position += 2
            continue
        mark = PUNCTUATION.get(window) or PUNCTUATION.get(window[:1])
        if mark:
            text.append(mark)
            position += 2 if window in PUNCTUATION else 1
            continue
        text.append(words[position])
        position += 1
    flush()
    return segments


def plain_text(segments):
    """The dictated text without the commands (what a page without command support would insert)."""
    return " ".join(segment["text"] for segment in segments if segment["type"] == "text")


def _macro(words, macros):
    """The insert_macro segment for the words after "insert macro", and how many of them name the macro: the
    longest macro name the words start with; none matching takes the words up to the next command."""
    for length in sorted({len(form) for form in macros}, reverse=True):
        form = tuple(words[:length])
        if len(form) == length and form in macros:
            macro = macros[form]
            return {"type": "command", "command": "insert_macro", "name": macro.name, "text": macro.text}, length
    used = 0
    while used < len(words) and not _starts_command(words[used:]):
        used += 1
    spoken = " ".join(words[:used])
    error = f"no macro named “{spoken}”" if spoken else "say the macro's name after “insert macro”"
    return {"type": "command", "command": "insert_macro", "name": spoken, "text": None, "error": error}, used


def _starts_command(words):
    window = tuple(words[:2])
    return window == INSERT_MACRO or window in COMMANDS or window in PUNCTUATION or window[:1] in PUNCTUATION


def _join(parts):
    """Words and punctuation as text: no space before punctuation or after a line break, and a capital letter
    after a full stop or a new paragraph (the start of a new sentence)."""
    out = ""
    capitalise = False
    for part in parts:
        if part in (".", ","):
            out = out.rstrip(" ") + part
            capitalise = capitalise or part == "."
        elif part.startswith("\n"):
            out = out.rstrip(" ") + part
            capitalise = capitalise or part == "\n\n"
        else:
            word = part.capitalize() if capitalise else part
            capitalise = False
            out += ("" if not out or out.endswith("\n") else " ") + word
    return out.strip(" ")
