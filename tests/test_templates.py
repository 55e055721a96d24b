"""Templates: every task and paraphrase round-trips, bad files and inputs give clear errors."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from talk2face.data.record import ATTRIBUTES, EditInfo, FaceRecord
from talk2face.errors import UserError
from talk2face.data.record import TASKS
from talk2face.templates import Templates
from talk2face.vocab import Vocab

REPO = Path(__file__).resolve().parents[1]


def make_record(i: int = 0, edit: bool = True) -> FaceRecord:
    rng = np.random.default_rng(i)
    return FaceRecord(
        image=rng.integers(0, 16, 64).astype(np.uint16), id=f"r{i}", age=int(rng.integers(1, 91)),
        attributes={a: bool(rng.integers(2)) for a in ATTRIBUTES[:: 1 + i % 3]},
        captions=["A 34-year-old woman with blond hair, smiling.", "young man; eyeglasses; no beard"],
        edit=EditInfo(rng.integers(0, 16, 64).astype(np.uint16), ["make her smile", "add a smile"], "Smiling", True)
        if edit else None,
    )


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates.load(REPO / "templates")


@pytest.fixture(scope="module")
def vocab() -> Vocab:
    return Vocab(Tokenizer.from_file(str(REPO / "tokenizers" / "synface" / "tokenizer.json")), n_codes=16)


def test_shipped_templates_cover_every_task(templates):
    assert set(TASKS) <= set(templates.tasks)


@pytest.mark.parametrize("task", TASKS)
def test_round_trip_every_paraphrase(task, templates, vocab):
    rng = np.random.default_rng(0)
    t = templates.get(task)
    for i in range(4):
        record = make_record(i)
        for index in range(len(t.prompts)):
            sample = templates.render(task, record, rng, prompt_index=index)
            assert sample.prompt.count("<face>") == len(sample.prompt_faces)
            if t.answers_with_face:
                assert sample.target == "<face>"
                np.testing.assert_array_equal(sample.target_faces[0], record.image)
                expected_prompt_face = record.edit.source if task == "edit" else None
                if expected_prompt_face is not None:
                    np.testing.assert_array_equal(sample.prompt_faces[0], expected_prompt_face)
                continue
            parsed = templates.parse(task, sample.target)
            assert parsed.ok, parsed.reason
            assert parsed.value == sample.label
            # and through the tokenizer (which lowercases)
            decoded = vocab.decode_text(vocab.encode(sample.target))
            again = templates.parse(task, decoded).value
            assert again == (sample.label.lower() if task == "caption" else sample.label)


def test_labels_are_the_records(templates):
    record = make_record(1)
    rng = np.random.default_rng(0)
    assert templates.render("age", record, rng).label == record.age
    assert templates.render("attributes", record, rng).label == record.attributes
    assert templates.render("caption", record, rng).label in record.captions
    target = templates.render("attributes", record, rng).target
    names = [item.rsplit(" ", 1)[0] for item in target.split(", ")]
    order = [a for a in ATTRIBUTES if a in record.attributes]
    assert names == [templates.get("attributes").attributes.words[a] for a in order]  # fixed order


def test_attribute_answer_slots_are_single_tokens(templates, vocab):
    record = make_record(0)
    target = templates.render("attributes", record, np.random.default_rng(0)).target
    ids = vocab.encode(target)
    yes, no = vocab.token_id("yes"), vocab.token_id("no")
    slots = np.isin(ids, [yes, no]) & np.r_[ids[1:] == vocab.tokenizer.token_to_id(","), True]  # a yes/no before a comma or at the end
    assert slots.sum() == len(record.attributes)


def test_unparseable_answers_say_why(templates):
    for task, text, why in [
        ("age", "thirty", "does not match"),
        ("age", "", "does not match"),
        ("attributes", "smiling yes, wings yes", "unknown attribute 'wings'"),
        ("attributes", "smiling yes, smiling no", "twice"),
        ("attributes", "smiling maybe", "is not"),
    ]:
        parsed = templates.parse(task, text)
        assert not parsed.ok and parsed.value is None and why in parsed.reason, (text, parsed)
    assert not templates.parse("caption", "   ").ok
    with pytest.raises(UserError, match="face"):
        templates.parse("text_to_face", "anything")


def test_unknown_task_and_missing_labels(templates):
    with pytest.raises(UserError, match="unknown task 'gender'"):
        templates.render("gender", make_record(), np.random.default_rng(0))
    with pytest.raises(UserError, match="has no \\['edit'\\]"):
        templates.render("edit", make_record(edit=False), np.random.default_rng(0))
    record = make_record()
    record.image = "train/0.png"
    with pytest.raises(UserError, match="pre-tokenize"):
        templates.render("caption", record, np.random.default_rng(0))


def _write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "mine.yaml").write_text(text)
    return folder


def test_bad_template_files_name_file_and_placeholder(tmp_path):
    folder = _write(tmp_path, 'task: age\nrequires: [age]\nprompts: ["{face} how old? {picture}"]\ntarget: "{age}"\n')
    with pytest.raises(UserError, match=r"mine\.yaml.*\{picture\}"):
        Templates.load(folder)
    _write(tmp_path, 'task: age\nrequires: []\nprompts: ["{face} how old?"]\ntarget: "{age}"\n')
    with pytest.raises(UserError, match=r"mine\.yaml.*\{age\}.*'age' in requires"):
        Templates.load(folder)
    _write(tmp_path, 'task: age\nrequires: [age]\nprompts: ["{face}"]\ntarget: "{age}"\ncolour: red\n')
    with pytest.raises(UserError, match=r"mine\.yaml.*unknown key.*colour"):
        Templates.load(folder)
    _write(tmp_path, 'task: age\nrequires: [age]\nprompts: ["{face}"]\ntarget: "{age}"\nparse: "(unclosed"\n')
    with pytest.raises(UserError, match=r"mine\.yaml.*regular expression"):
        Templates.load(folder)
    _write(tmp_path, 'task: edit\nrequires: [edit]\nprompts: ["{face} {instruction}"]\ntarget: "{face}"\nunconditional: "{instruction}"\n')
    with pytest.raises(UserError, match=r"mine\.yaml.*unconditional"):
        Templates.load(folder)


def test_a_user_adds_a_paraphrase_and_a_task_without_python(tmp_path, templates):
    folder = tmp_path / "templates"
    shutil.copytree(REPO / "templates", folder)
    age = folder / "age.yaml"
    age.write_text(re.sub(r"(?m)^prompts:.*$", '\\g<0>\n  - "{face} tell me the age in years"', age.read_text(), count=1))
    (folder / "age_words.yaml").write_text(
        'task: age_words\nrequires: [age]\nprompts: ["{face} age in years?"]\ntarget: " {age} years old "\n'
    )
    mine = Templates.load(folder)
    assert len(mine.get("age").prompts) == len(templates.get("age").prompts) + 1
    sample = mine.render("age_words", make_record(), np.random.default_rng(0))
    assert sample.target == f" {make_record().age} years old "
    assert mine.parse("age_words", sample.target).value == make_record().age  # parse derived from target
    assert not mine.parse("age_words", "34 years young").ok


def test_render_raw_user_prompt_strings(templates):
    face = np.arange(64)
    sample = templates.render_raw("to caption: {face}", face=face)
    assert sample.prompt == "to caption: <face>" and len(sample.prompt_faces) == 1
    two = templates.render_raw("{face} and {face}", face=[face, face + 1])
    np.testing.assert_array_equal(two.prompt_faces[1], face + 1)
    assert templates.render_raw("to image: {text}", text="a smiling man").prompt == "to image: a smiling man"
    with pytest.raises(UserError, match=r"\{text\}"):
        templates.render_raw("to image: {text}")
    with pytest.raises(UserError, match=r"unknown placeholder \{colour\}"):
        templates.render_raw("to image: {colour}", colour="red")


def test_an_edit_plan_names_the_change_in_the_attribute_lists_words(templates, vocab):
    rng = np.random.default_rng(0)
    for attribute, value, words in [("Smiling", True, "smiling yes"), ("5_o_Clock_Shadow", False, "stubble no"),
                                    ("age", 45, "age 45")]:
        record = make_record(0)
        record.edit = EditInfo(record.edit.source, ["do it"], attribute, value)
        sample = templates.render("edit_plan", record, rng)
        assert sample.target == words and sample.label == (attribute, value)
        assert "do it" in sample.prompt and not sample.prompt_faces
        assert templates.parse("edit_plan", vocab.decode_text(vocab.encode(sample.target))).value == (attribute, value)
    two = templates.parse("edit_plan", "smiling yes, bald no")
    assert not two.ok and "one attribute" in two.reason
    assert not templates.parse("edit_plan", "glasses on").ok
