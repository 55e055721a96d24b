"""`talk2face serve` through Gradio's own client: each tab answers what the Python API answers,
and a user's mistake comes back as a message while the server keeps serving."""

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from talk2face.cli import main
from talk2face.facade import Talk2Face


@pytest.fixture(scope="module")
def client(tiny_server, tmp_path_factory):
    return Client(tiny_server.local_url, verbose=False, analytics_enabled=False,
                  download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def model(tiny_model):
    return Talk2Face.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def face(tiny_world):
    return str(sorted((tiny_world["synface"] / "test").glob("*.png"))[0])


def size_of(path):
    with Image.open(path) as im:
        return im.size


def test_text_to_face_shows_faces_and_the_text_as_read(client):
    gallery, read = client.predict("a lady with specs", 3, 0, 3.0, api_name="/text_to_face")
    assert [size_of(item["image"]) for item in gallery] == [(32, 32)] * 3
    assert read == "a woman with spectacles"


def test_describe_answers_as_the_python_api(client, model, face):
    caption, age, attributes = client.predict(handle_file(face), api_name="/describe")
    assert caption == model.caption([face])[0] and caption
    assert age == round(model.estimate_age([face])[0], 1)
    expected = model.classify_attributes([face])[0]
    shown = {c["label"]: c["confidence"] for c in attributes["confidences"]}
    assert shown.keys() == expected.keys() == set(model.attributes)
    assert shown == pytest.approx(expected)


def test_edits_chain(client, model, face):
    edited = client.predict(handle_file(face), "add glasses", 0, api_name="/edit")
    assert size_of(edited) == (32, 32)
    again = client.predict(handle_file(edited), model.attributes[0], "yes", 0, api_name="/set_attribute")
    assert size_of(again) == (32, 32)


def test_template_string(client, model, face):
    text, image = client.predict("to caption: {face}", handle_file(face), "", "", api_name="/prompt")
    if image is None:  # the model's first answer token decides: text, or a face
        assert text == model.prompt("to caption: {face}", face=face)
    else:
        assert size_of(image) == (32, 32)


@pytest.mark.parametrize("endpoint, args, message", [
    ("/describe", ["NOT_AN_IMAGE"], "notes.txt is not an image"),
    ("/describe", [None], "no face"),
    ("/text_to_face", ["  ", 1, 0, 3.0], "type a description"),
    ("/prompt", ["describe {person}", None, "", ""], "unknown placeholder {person}"),
])
def test_mistakes_are_messages_and_the_server_keeps_serving(client, tmp_path, endpoint, args, message):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a face")
    args = [handle_file(str(notes)) if a == "NOT_AN_IMAGE" else a for a in args]
    with pytest.raises(AppError, match=message.replace("{", r"\{").replace("}", r"\}")):
        client.predict(*args, api_name=endpoint)
    gallery, _ = client.predict("a smiling old man", 1, 0, 3.0, api_name="/text_to_face")
    assert len(gallery) == 1


def test_missing_model_is_one_line_saying_how_to_pass_one(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no model folder at" in err and "--model DIR" in err and len(err.splitlines()) == 1


def test_example_faces_render_or_come_from_a_test_split(tiny_world):
    from talk2face.serve import example_faces

    assert [im.size for im in example_faces(32)] == [(32, 32)] * 6
    assert len(example_faces(32, str(tiny_world["synface"]))) >= 1
