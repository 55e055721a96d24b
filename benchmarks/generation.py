"""Generation-speed benchmark, every figure measured side by side in one run.

    python -m benchmarks.generation [--model DIR] [--faces 16]

1. 16 faces: this project's batched, constrained `text_to_face` (KV cache, one `generate` call)
   versus the decoding of the Talk2Face code release (batch 1, no KV cache, the whole sequence
   recomputed for every token, top-k 70 sampling), same model, same prompts.
2. Constrained versus plain unconstrained `model.generate` (top-k sampling) on the same batch;
   the project's generation in fp32 versus bf16 autocast.
3. Guided (CFG, one batched pass over conditional + unconditional rows) versus unguided.
4. `Talk2Face.compile()` (static KV cache, compiled decoding step): its first call and later ones.
5. Age estimation and attribute classification of 256 faces: images/s.
Without --model it uses an untrained `small` decoder with the SynFace vocabulary and a
`synface-64` VQGAN: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from talk2face import shipped
from talk2face.data.record import ATTRIBUTES
from talk2face.logits_processors import AllowedRange, filter_logits
from talk2face.modeling import build_model
from talk2face.facade import Talk2Face
from talk2face.templates import Templates
from talk2face.vocab import Vocab
from talk2face.vqgan import VQGAN, VQGAN_PRESETS

PROMPTS = [
    "a smiling old man with glasses", "a young woman with blond hair", "a bald man with a beard",
    "a little girl with bangs", "a woman in her forties wearing earrings", "a man with black wavy hair",
    "an elderly woman with gray hair", "a chubby man wearing a hat",
]


def untrained_model() -> Talk2Face:
    """A `small` decoder and `synface-64` VQGAN with random weights and the shipped vocabulary, on the CPU."""
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    vqgan = VQGAN(VQGAN_PRESETS["synface-64"])
    vocab = Vocab(Tokenizer.from_file(str(shipped.TEXT_TOKENIZER)), vqgan.n_codes)
    model = build_model("small", len(vocab), 192, vocab.pad_id, vocab.bos_id, vocab.eos_id)
    return Talk2Face(model, vocab, vqgan, Templates.load(shipped.TEMPLATES), ATTRIBUTES[:25], 192)


def timed(fn: Callable[[], object], repeats: int = 1) -> float:
    """Best wall time of `repeats` calls, after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@torch.no_grad()
def reference_decoding(t2f: Talk2Face, prompts: list[np.ndarray], top_k: int = 70) -> torch.Tensor:
    """The Talk2Face release's loop: one face at a time, no cache, full recompute per token, top-k."""
    n = t2f.n_image_tokens
    faces = []
    for prompt in prompts:
        ids = torch.from_numpy(np.append(prompt, t2f.vocab.boi_id))[None]  # (1, P)
        for _ in range(n):
            logits = t2f.model(input_ids=ids, use_cache=False).logits[:, -1].float()  # (1, V)
            probs = filter_logits(logits, 1.0, top_k, 1.0).softmax(-1)
            ids = torch.cat([ids, torch.multinomial(probs, 1)], dim=1)
        faces.append(ids[0, -n:])
    return torch.stack(faces)


@torch.no_grad()
def plain_generate(t2f: Talk2Face, prompts: list[np.ndarray], constrained: bool) -> torch.Tensor:
    """Batched `model.generate` with top-k sampling, with or without the image-span constraint."""
    ids, mask = t2f._left_pad([np.append(p, t2f.vocab.boi_id) for p in prompts])
    processors = [AllowedRange(t2f.vocab.image_token_range.start, t2f.vocab.image_token_range.stop)] if constrained else []
    with t2f._autocast():
        return t2f.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=t2f.n_image_tokens, min_new_tokens=t2f.n_image_tokens,
            do_sample=True, top_k=70, logits_processor=processors, pad_token_id=t2f.vocab.pad_id, eos_token_id=None,
        )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained model folder (default: an untrained small model)")
    parser.add_argument("--faces", type=int, default=16)
    parser.add_argument("--analysis-faces", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="where --model runs (cpu or cuda)")
    args = parser.parse_args(argv)
    t2f = Talk2Face.from_pretrained(args.model, args.device) if args.model else untrained_model()
    bf16 = t2f.bf16  # the pipeline's default precision; the other one is timed below
    texts = [PROMPTS[i % len(PROMPTS)] for i in range(args.faces)]
    prompts = [t2f.task_prompt_ids("text_to_face", text=t) for t in texts]
    figures: dict[str, float] = {}

    def generate(cfg_scale: float | None = None) -> object:
        return t2f.text_to_face(texts, cfg_scale=cfg_scale, top_k=70, seed=0, batch_size=args.faces)

    print(f"decoder: {sum(p.numel() for p in t2f.model.parameters()) / 1e6:.1f}M parameters, "
          f"{t2f.n_image_tokens} codes per face, bf16 autocast {'on' if bf16 else 'off'}")
    reference = timed(lambda: reference_decoding(t2f, prompts), repeats=1)
    ours = timed(generate, repeats=2)
    figures["speedup_vs_reference"] = reference / ours
    print(f"{args.faces} faces: reference decoding {reference:.2f} s, talk2face {ours:.2f} s "
          f"-> {reference / ours:.1f}x faster (target >= 20x)")

    plain = timed(lambda: plain_generate(t2f, prompts, constrained=False), repeats=2)
    constrained = timed(lambda: plain_generate(t2f, prompts, constrained=True), repeats=2)
    figures["constrained_over_plain"] = constrained / plain
    print(f"generate, batch {args.faces}: plain {plain:.2f} s, constrained {constrained:.2f} s "
          f"-> {constrained / plain:.2f}x the time (target <= 1.0x)")

    t2f.bf16 = not bf16
    other = timed(generate, repeats=2)
    t2f.bf16 = bf16
    figures["bf16_over_fp32"] = (ours / other) if bf16 else (other / ours)
    print(f"precision: {'bf16' if bf16 else 'fp32'} (default here) {ours:.2f} s, {'fp32' if bf16 else 'bf16'} "
          f"{other:.2f} s -> bf16 takes {figures['bf16_over_fp32']:.2f}x the time of fp32")

    guided = timed(lambda: generate(cfg_scale=3.0), repeats=2)
    figures["guided_over_unguided"] = guided / ours
    print(f"guidance: unguided {ours:.2f} s, guided {guided:.2f} s -> {guided / ours:.2f}x (target <= 1.6x)")

    t2f.compile()
    start = time.perf_counter()
    generate()  # compiles the decoding step for this batch shape
    first = time.perf_counter() - start
    compiled = timed(generate, repeats=2)
    figures["compiled_speedup_vs_reference"] = reference / compiled
    print(f"compiled (static cache + torch.compile): first call {first:.1f} s (compiling), then {compiled:.2f} s "
          f"-> {compiled / ours:.2f}x the time of the default, {reference / compiled:.1f}x faster than the reference")

    rng = np.random.default_rng(0)
    size = t2f.vqgan.image_size
    faces = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(args.analysis_faces)]
    age = timed(lambda: t2f.estimate_age(faces))
    attrs = timed(lambda: t2f.classify_attributes(faces))
    figures["age_images_per_s"] = len(faces) / age
    figures["attributes_images_per_s"] = len(faces) / attrs
    print(f"{len(faces)} faces: age {len(faces) / age:,.0f} images/s (1 forward pass per batch), "
          f"attributes {len(faces) / attrs:,.0f} images/s (2 forward passes per batch)")
    return figures


if __name__ == "__main__":
    main()
