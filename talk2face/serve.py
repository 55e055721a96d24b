"""`talk2face serve`: every task of one model on a local web page (a Gradio app).

    talk2face serve [--model DIR] [--port N] [--host 127.0.0.1] [--data DIR]

One tab per task, each calling public Talk2Face methods only: text to face, describe a face
(caption, age, attribute probabilities), edit (by an instruction, or one attribute set in place;
the result can be edited again) and a free template string. Example prompts and faces load with
one click. A user's mistake (a UserError, an upload that is not an image, an empty prompt) shows
as a message on the page; the page never shows a traceback.
Gradio is an optional extra: `pip install -e '.[serve]'`.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from talk2face.errors import UserError
from talk2face.shipped import MODEL, SHOWCASE_EDITS, SHOWCASE_PROMPTS

PORT = 7860  # Gradio's usual one
EXAMPLE_FACES = 6
EXAMPLE_TEMPLATES = ["to caption: {face}", "to image: {text}", "{face} how old is this person?"]
# Faces are a few dozen pixels wide: show them enlarged, with hard edges rather than blurred.
CSS = "img { image-rendering: pixelated; }  .face img { width: 100%; height: 100%; object-fit: contain; }"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=str(MODEL), help="a trained model folder; the default is the shipped SynFace model")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every network interface)")
    parser.add_argument("--data", help="a SynFace folder whose test faces are the examples (default: render a few)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")


def run(args: argparse.Namespace) -> int:
    launch(args).block_thread()  # serves until Ctrl-C
    return 0


def launch(args: argparse.Namespace):
    """Load the model, build the app and start serving it in a background thread.

    Returns:
        the running gr.Blocks (`.local_url`; `.close()` stops it).
    """
    if not Path(args.model).is_dir():
        raise UserError(f"no model folder at {args.model}: pass --model DIR, a trained model folder "
                        "(e.g. --model runs/demo/decoder/final, written by make demo)")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the web demo needs Gradio: pip install -e '.[serve]'") from None
    from talk2face.facade import Talk2Face

    model = Talk2Face.from_pretrained(args.model, device=args.device)
    model.lexicon  # loads WordNet now rather than on the first click with a word the model does not know
    app = build_app(model, example_faces(model.vqgan.image_size, args.data))
    app.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True, ssr_mode=False,
               css=CSS, theme=_theme())
    return app


def example_faces(size: int, data: str | None = None) -> list:
    """A few faces to try: the test split of a SynFace folder, or freshly rendered ones (no files needed)."""
    from PIL import Image

    if data:
        from talk2face.data.sources import open_source

        source = open_source(data)
        records = [r for r in source.records("test") if r.edit is None][:EXAMPLE_FACES]
        return [Image.open(source.image_path(r)).convert("RGB") for r in records]
    import numpy as np

    from talk2face.data.synface import render_face, sample_params

    return [render_face(sample_params(np.random.default_rng([0, i])), size) for i in range(EXAMPLE_FACES)]


def _theme():
    import gradio as gr

    # System fonts: the default theme fetches web fonts, and nothing here downloads at run time.
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def _shows_errors(fn: Callable) -> Callable:
    """A user's mistake becomes a message on the page (gr.Error), never a traceback."""
    import gradio as gr

    @functools.wraps(fn)  # keeps the signature: Gradio finds the gr.Progress argument through it
    def handler(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return handler


def _face(upload: dict | None):
    """The uploaded face, read here rather than by Gradio so that a file that is not an image
    is a user's mistake with a message (Gradio's own reading fails with a developer's error)."""
    from talk2face.data.images import open_image

    if not upload or not upload.get("path"):
        raise UserError("no face: upload one, or click an example")
    try:
        return open_image(upload["path"])
    except UserError:
        raise UserError(f"{upload.get('orig_name') or 'the upload'} is not an image that can be read "
                        "(upload a PNG or JPEG face)") from None


def _edited(face):
    """The edited face, to become the next source (chained edits)."""
    if face is None:
        raise UserError("nothing edited yet: click Edit first")
    return face


def _seed(value: float | None) -> int | None:
    """The seed box's value; empty: a fresh sample every click."""
    return None if value is None else int(value)


def build_app(model, faces: list):
    """The page: one tab per task over `model` (a Talk2Face), with `faces` (PIL) as examples.

    Events with a face input take Gradio's raw upload (preprocess=False) and read it with `_face`.
    """
    import gradio as gr

    def text_to_face(text: str, n: float, seed: float | None, guidance: float, progress=gr.Progress()):
        if not (text or "").strip():
            raise UserError("type a description first, e.g. " + repr(SHOWCASE_PROMPTS[0]))
        read = model.free_text(text)
        progress(0, desc=f"generating {int(n)} face(s)")
        return model.text_to_face(text, num_samples=int(n), cfg_scale=guidance, seed=_seed(seed)), read

    def describe(upload: dict | None, progress=gr.Progress()):
        face = _face(upload)
        progress(0, desc="captioning")
        caption = model.caption([face])[0]
        progress(0.5, desc="age and attributes")
        return caption, round(model.estimate_age([face])[0], 1), model.classify_attributes([face])[0]

    def edit(upload: dict | None, instruction: str, seed: float | None, progress=gr.Progress()):
        if not (instruction or "").strip():
            raise UserError("type an instruction first, e.g. " + repr(SHOWCASE_EDITS[0]))
        face = _face(upload)
        progress(0, desc="editing")
        return model.edit([face], instruction, seed=_seed(seed))[0]

    def set_attribute(upload: dict | None, attribute: str, value: str, seed: float | None,
                      progress=gr.Progress()):
        face = _face(upload)
        progress(0, desc=f"setting {attribute} to {value}")
        return model.edit_in_place([face], attribute, value == "yes", seed=_seed(seed))[0]

    def prompt(template: str, upload: dict | None, text: str, instruction: str, progress=gr.Progress()):
        if not (template or "").strip():
            raise UserError("type a template first, e.g. " + repr(EXAMPLE_TEMPLATES[0]))
        fields = {k: v for k, v in (("text", text), ("instruction", instruction)) if (v or "").strip()}
        if upload:
            fields["face"] = _face(upload)
        progress(0, desc="answering")
        answer = model.prompt(template, **fields)
        return (answer, None) if isinstance(answer, str) else ("", answer)

    def on(button, fn: Callable, inputs: list, outputs: list, raw: bool = True) -> None:
        # One request at a time over all events (one concurrency_id): they share one decoder.
        button.click(_shows_errors(fn), inputs, outputs, api_name=fn.__name__, preprocess=not raw,
                     concurrency_id="model", concurrency_limit=1)

    def face_input(label: str = "face", elem_id: str | None = None):
        return gr.Image(label=label, type="pil", format="png", height=256, sources=["upload", "clipboard"],
                        elem_id=elem_id, elem_classes="face")

    with gr.Blocks(title="talk2face", analytics_enabled=False) as app:
        gr.Markdown("# talk2face\nOne decoder for every face task. Click an example, or bring your own.")
        with gr.Tab("Text to face"):
            with gr.Row():
                with gr.Column():
                    text = gr.Textbox(label="description", placeholder=SHOWCASE_PROMPTS[0])
                    n = gr.Slider(1, 8, value=4, step=1, label="number of faces")
                    seed = gr.Number(0, precision=0, label="seed (empty: new faces every click)")
                    guidance = gr.Slider(1, 6, value=3, step=0.5, label="guidance (classifier-free; 1 = off)")
                    generate = gr.Button("Generate", variant="primary")
                    gr.Examples([[p] for p in SHOWCASE_PROMPTS], [text])
                with gr.Column():
                    gallery = gr.Gallery(label="faces", format="png", columns=4, height=320, elem_id="faces")
                    read = gr.Textbox(label="the description as the model reads it", interactive=False)
            on(generate, text_to_face, [text, n, seed, guidance], [gallery, read], raw=False)

        with gr.Tab("Describe a face"):
            with gr.Row():
                with gr.Column():
                    face = face_input(elem_id="describe-face")
                    describe_button = gr.Button("Describe", variant="primary")
                    gr.Examples([[f] for f in faces], [face])
                with gr.Column():
                    caption = gr.Textbox(label="caption", interactive=False, elem_id="caption")
                    age = gr.Number(label="age", interactive=False)
                    attributes = gr.Label(label="attributes: P(present)", num_top_classes=len(model.attributes))
            on(describe_button, describe, [face], [caption, age, attributes])

        with gr.Tab("Edit"):
            with gr.Row():
                with gr.Column():
                    source = face_input("face to edit")
                    gr.Examples([[f] for f in faces], [source])
                    instruction = gr.Textbox(label="instruction", placeholder=SHOWCASE_EDITS[0])
                    gr.Examples([[e] for e in SHOWCASE_EDITS], [instruction])
                    edit_seed = gr.Number(0, precision=0, label="seed (empty: a new edit every click)")
                    edit_button = gr.Button("Edit", variant="primary")
                    with gr.Row():
                        attribute = gr.Dropdown(model.attributes, value=model.attributes[0], label="attribute")
                        value = gr.Radio(["yes", "no"], value="yes", label="set to")
                    set_button = gr.Button("Set the attribute in place")
                with gr.Column():
                    result = gr.Image(label="edited", type="pil", format="png", height=256, interactive=False,
                                      elem_classes="face")
                    again = gr.Button("Edit the result again")
            on(edit_button, edit, [source, instruction, edit_seed], [result])
            on(set_button, set_attribute, [source, attribute, value, edit_seed], [result])
            again.click(_shows_errors(_edited), result, source, api_visibility="private")  # chained edits

        with gr.Tab("Template"):
            with gr.Row():
                with gr.Column():
                    template = gr.Textbox(label="template string", placeholder=EXAMPLE_TEMPLATES[0],
                                          info="placeholders: {face}, {text}, {instruction}")
                    gr.Examples([[t] for t in EXAMPLE_TEMPLATES], [template])
                    prompt_face = face_input("{face}")
                    prompt_text = gr.Textbox(label="{text}")
                    prompt_instruction = gr.Textbox(label="{instruction}")
                    answer_button = gr.Button("Answer", variant="primary")
                with gr.Column():
                    answer_text = gr.Textbox(label="answer (text)", interactive=False)
                    answer_face = gr.Image(label="answer (face)", type="pil", format="png", height=256,
                                           interactive=False, elem_classes="face")
            on(answer_button, prompt, [template, prompt_face, prompt_text, prompt_instruction],
               [answer_text, answer_face])
    return app
