"""SynFace: the embedded procedural face data set with exact ground truth (see DESIGN.md).

    params = sample_params(np.random.default_rng(0))   # labels + identity
    image = render_face(params, 64)                     # PIL RGB, 64x64
    counts = generate(20000, 64, seed=0, out_dir="data/synface")   # imagefolder + metadata.jsonl

Modules: params (labels, identity, consistency rules), render (drawing), captions (training
grammar), freestyle (held-out grammar), edits (edit pairs), generate (writing), sheet (contact
sheet), cli (`talk2face synth`).
"""

from talk2face.data.synface.captions import make_captions
from talk2face.data.synface.edits import Edit, sample_edit
from talk2face.data.synface.freestyle import heldout_prompts
from talk2face.data.synface.generate import generate, make_records
from talk2face.data.synface.params import SYN_ATTRIBUTES, YOUNG_BELOW, FaceParams, check_consistent, sample_params
from talk2face.data.synface.render import render_face
from talk2face.data.synface.sheet import contact_sheet

__all__ = [
    "SYN_ATTRIBUTES", "YOUNG_BELOW", "Edit", "FaceParams", "check_consistent", "contact_sheet",
    "generate", "heldout_prompts", "make_captions", "make_records", "render_face", "sample_edit",
    "sample_params",
]
