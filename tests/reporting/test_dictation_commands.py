"""Voice commands in a transcript: "next field", "insert macro <name>", "sign report" (which only asks the editor
for confirmation) and spoken punctuation, returned in order with the text between them."""
from types import SimpleNamespace

import pytest

from reporting.dictation import commands
from reporting.models import Macro
from tests.factories import UserFactory

MACROS = {
    ("normal", "chest"): SimpleNamespace(name="Normal chest", text="The lungs are clear. No effusion."),
    ("normal", "chest", "child"): SimpleNamespace(name="Normal chest child", text="Normal paediatric chest."),
}


def parse(transcript):
    return commands.parse(transcript, MACROS)


def test_plain_dictation_is_one_text_segment():
    assert parse("Small left pleural effusion") == [{"type": "text", "text": "small left pleural effusion"}]


def test_next_field_splits_the_text():
    assert parse("no pneumothorax next field normal heart size") == [
        {"type": "text", "text": "no pneumothorax"},
        {"type": "command", "command": "next_field"},
        {"type": "text", "text": "normal heart size"}]


def test_previous_field_moves_back():
    assert parse("previous field") == [{"type": "command", "command": "previous_field"}]


def test_sign_report_asks_for_confirmation_and_signs_nothing():
    assert parse("normal study sign report") == [
        {"type": "text", "text": "normal study"},
        {"type": "command", "command": "sign_report", "needs_confirmation": True}]


def test_insert_macro_gives_the_macros_text():
    assert parse("insert macro normal chest") == [
        {"type": "command", "command": "insert_macro", "name": "Normal chest",
         "text": "The lungs are clear. No effusion."}]


def test_the_longest_macro_name_wins_and_dictation_goes_on_after_it():
    assert parse("insert macro normal chest child no change") == [
        {"type": "command", "command": "insert_macro", "name": "Normal chest child",
         "text": "Normal paediatric chest."},
        {"type": "text", "text": "no change"}]


def test_an_unknown_macro_is_an_error_not_typed_text():
    assert parse("insert macro normal knee next field") == [
        {"type": "command", "command": "insert_macro", "name": "normal knee", "text": None,
         "error": "no macro named “normal knee”"},
        {"type": "command", "command": "next_field"}]


def test_insert_macro_without_a_name_says_what_is_missing():
    [segment] = parse("insert macro")
    assert segment["error"] == "say the macro's name after “insert macro”"


def test_spoken_punctuation_becomes_punctuation_and_starts_a_sentence():
    assert parse("no effusion full stop no pneumothorax comma no fracture new paragraph impression normal") == [
        {"type": "text", "text": "no effusion. No pneumothorax, no fracture\n\nImpression normal"}]


def test_new_line_breaks_the_line():
    assert parse("heart normal new line lungs clear") == [{"type": "text", "text": "heart normal\nlungs clear"}]


def test_plain_text_leaves_the_commands_out():
    assert commands.plain_text(parse("no effusion next field clear lungs sign report")) == "no effusion clear lungs"


def test_the_words_of_commands_inside_other_words_are_not_commands():
    assert parse("the next fielding position") == [{"type": "text", "text": "the next fielding position"}]


@pytest.mark.django_db
def test_a_personal_macro_hides_a_shared_one_of_the_same_name():
    marie, pierre = UserFactory(username="marie"), UserFactory(username="pierre")
    Macro.objects.create(name="Normal chest", text="Shared text.")
    Macro.objects.create(name="normal  CHEST", text="Marie's text.", owner=marie)
    Macro.objects.create(name="Pierre's own", text="Not Marie's.", owner=pierre)

    macros = commands.macros_for(marie)

    assert {form: macro.text for form, macro in macros.items()} == {("normal", "chest"): "Marie's text."}
