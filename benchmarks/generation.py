"""Generation-speed benchmark: every way to decode faces, side by side in one run, against the arithmetic.

    python -m benchmarks.generation [--model DIR] [--batches 1 16 256] [--repeats 5]

For each batch of faces, the same model decodes the same prompts (unguided top-k 70 sampling, the
Talk2Face release's setting) five ways:
- `release`: the Talk2Face code release's decoding: one face at a time, no KV cache, the whole
  sequence recomputed for every token. Its time is linear in the faces, so above 8 faces it is
  timed on the first 8 (one pass over the prompts) and scaled;
- `generate`: plain `model.generate` (do_sample, top_k 70, no constraint);
- `current`: `text_to_face`'s codes through `generate` and the logits processors (`decoder = None`);
- `static`: `text_to_face`'s codes as a user gets them, by the static decoder (talk2face.decoding);
- `compiled`: the same after `Talk2Face.compile()` (its first call, on an empty compile cache, is
  printed apart).
Every method stops at the codes: the VQGAN's pixels, which the release and `generate` do not make,
are left out.
Also `static` and `compiled` in the other precision (bf16 autocast on a CPU, fp32 on a GPU), and at
batch 16 `guided` (the default `text_to_face`, cfg 3: two rows per face).
Every method is warmed up, then timed in `--repeats` interleaved rounds; min and median printed.
Each row's floor is its arithmetic: the FLOPs of every row it computes (guidance twins, padding,
the logits it computes and attention over the keys it reads included) over the best matmul rate
measured on this machine in any precision.
Then age and attribute reading of 256 faces (images/s). Without --model it uses an untrained
`small` decoder with the SynFace vocabulary and a `synface-64` VQGAN: speed does not depend on
the weights.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from benchmarks.matmul import best_matmul_rate
from talk2face import shipped
from talk2face.data.record import ATTRIBUTES
from talk2face.decoding import StaticDecoder
from talk2face.facade import Talk2Face
from talk2face.logits_processors import filter_logits
from talk2face.modeling import build_model
from talk2face.sampling import Sampling
from talk2face.templates import Templates
from talk2face.vocab import Vocab
from talk2face.vqgan import VQGAN, VQGAN_PRESETS

PROMPTS = [
    "a smiling old man with glasses", "a young woman with blond hair", "a bald man with a beard",
    "a little girl with bangs", "a woman in her forties wearing earrings", "a man with black wavy hair",
    "an elderly woman with gray hair", "a chubby man wearing a hat",
]
RELEASE_FACES = 8  # the release decodes one face after another: above this many, time these and scale


def untrained_model(preset: str = "small", device: str = "cpu") -> Talk2Face:
    """A `preset` decoder and `synface-64` VQGAN with random weights and the shipped vocabulary on
    `device` (bf16 autocast on a GPU, as `Talk2Face.from_pretrained` sets it)."""
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    vqgan = VQGAN(VQGAN_PRESETS["synface-64"]).to(device)
    vocab = Vocab(Tokenizer.from_file(str(shipped.TEXT_TOKENIZER)), vqgan.n_codes)
    model = build_model(preset, len(vocab), 192, vocab.pad_id, vocab.bos_id, vocab.eos_id).to(device)
    return Talk2Face(model, vocab, vqgan, Templates.load(shipped.TEMPLATES), ATTRIBUTES[:25], 192, bf16=device != "cpu")


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def token_flops(config, keys: int, logits: int) -> float:
    """FLOPs of one token through the decoder (2 per multiply-add): the layers' matmuls, attention
    (QK and AV) over `keys` keys, and the output projection's rows for `logits` logits."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    q, kv, h = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim, config.hidden_size
    per_layer = h * (q + 2 * kv) + q * h + 3 * h * config.intermediate_size + 2 * q * keys
    return 2 * (config.num_hidden_layers * per_layer + h * logits)


def cached_flops(config, rows: int, width: int, new: int, step_logits: int) -> float:
    """A KV-cached decode of `new` tokens after (rows, width) prompts: the prompt pass (every logit
    of its last position only), then new - 1 one-token steps over the keys so far, each computing
    `step_logits` logits (the vocabulary, or the static decoder's image codes)."""
    prompt = sum(token_flops(config, k + 1, config.vocab_size if k == width - 1 else 0) for k in range(width))
    steps = sum(token_flops(config, width + i + 1, step_logits) for i in range(new - 1))
    return rows * (prompt + steps)


def release_flops(config, widths: list[int], new: int) -> float:
    """The release's decode: for each token the whole sequence again, logits at every position."""
    v = config.vocab_size
    base, per_key = token_flops(config, 0, v), token_flops(config, 1, v) - token_flops(config, 0, v)
    lengths = np.array([w + t for w in widths for t in range(new)], dtype=np.float64)  # the sequence at each token
    return float((lengths * base + per_key * lengths * (lengths + 1) / 2).sum())  # positions 1..T attend 1..T keys


@torch.no_grad()
def release_decoding(t2f: Talk2Face, prompts: list[np.ndarray], top_k: int = 70) -> torch.Tensor:
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
def plain_generate(t2f: Talk2Face, prompts: list[np.ndarray]) -> torch.Tensor:
    """Batched `model.generate` with top-k 70 sampling, no constraint."""
    ids, mask = t2f._left_pad([np.append(p, t2f.vocab.boi_id) for p in prompts])
    with t2f._autocast():
        return t2f.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=t2f.n_image_tokens, min_new_tokens=t2f.n_image_tokens,
            do_sample=True, top_k=70, pad_token_id=t2f.vocab.pad_id, eos_token_id=None,
        )


class Variants:
    """The Talk2Face under test set up as each method needs it (decoder, precision), per call."""

    def __init__(self, t2f: Talk2Face) -> None:
        self.t2f, self.bf16 = t2f, t2f.bf16
        self.static, self.compiled = StaticDecoder(t2f.model), StaticDecoder(t2f.model, compiled=True)

    def faces(self, texts: list[str], decoder: StaticDecoder | None, cfg_scale: float | None = None,
              bf16: bool | None = None) -> Callable[[], object]:
        """`text_to_face(texts, cfg_scale, top_k=70, seed=0)` up to its codes (no pixels), as one call."""
        cond = [self.t2f.task_prompt_ids("text_to_face", text=t) for t in texts]
        uncond = [self.t2f.task_prompt_ids("text_to_face", unconditional=True)] * len(cond)

        def run() -> object:
            self.t2f.decoder, self.t2f.bf16 = decoder, self.bf16 if bf16 is None else bf16
            return self.t2f._generate_faces(cond, uncond, Sampling(cfg_scale, top_k=70, seed=0), len(texts))
        return run


def compare(t2f: Talk2Face, variants: Variants, batch: int, repeats: int, rate: float) -> dict[str, float]:
    """Time every method at one batch size, interleaved; print min / median and the floor of each."""
    config, new, codes = t2f.model.config, t2f.n_image_tokens, len(t2f.vocab.image_token_range)
    texts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
    prompts = [t2f.task_prompt_ids("text_to_face", text=t) for t in texts]
    uncond = t2f.task_prompt_ids("text_to_face", unconditional=True)
    width = max(len(p) for p in prompts) + 1  # + <boi>
    guided_width = max(width, len(uncond) + 1)
    timed_release = prompts[: min(batch, RELEASE_FACES)]
    methods: dict[str, tuple[Callable[[], object], float, float]] = {  # name: (call, scale to the batch, FLOPs)
        "release": (lambda: release_decoding(t2f, timed_release), batch / len(timed_release),
                    release_flops(config, [len(p) + 1 for p in prompts], new)),
        "generate": (lambda: plain_generate(t2f, prompts), 1.0, cached_flops(config, batch, width, new, config.vocab_size)),
        "current": (variants.faces(texts, None), 1.0, cached_flops(config, batch, width, new, config.vocab_size)),
        "static": (variants.faces(texts, variants.static), 1.0, cached_flops(config, batch, width, new, codes)),
        "compiled": (variants.faces(texts, variants.compiled), 1.0, cached_flops(config, batch, width, new, codes)),
    }
    other = "fp32" if variants.bf16 else "bf16"  # the precision the user does not get by default here
    for name, decoder in (("static", variants.static), ("compiled", variants.compiled)):
        methods[f"{name} {other}"] = (variants.faces(texts, decoder, bf16=not variants.bf16), 1.0,
                                      cached_flops(config, batch, width, new, codes))
    if batch == 16:
        methods["guided"] = (variants.faces(texts, variants.static, cfg_scale=3.0), 1.0,
                             cached_flops(config, 2 * batch, guided_width, new, codes))
    for call, _, _ in methods.values():
        call()  # warm-up (the compiled step compiled before this, in main)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, (call, scale, _) in methods.items():
            times[name].append(_seconds(call) * scale)
    best = {name: min(t) for name, t in times.items()}
    print(f"batch {batch} ({batch} faces x {new} codes; min / median of {repeats} interleaved rounds; floor at "
          f"{rate:,.0f} GFLOP/s):")
    for name, (_, scale, flops) in methods.items():
        floor = flops / (rate * 1e9)
        note = f"  (timed on {len(timed_release)} faces, scaled)" if name == "release" and scale != 1 else ""
        print(f"  {name:12s} {best[name]:8.3f} s / {np.median(times[name]):8.3f} s   floor {floor:7.3f} s "
              f"({best[name] / floor:6.1f}x)   release / this {best['release'] / best[name]:6.1f}x{note}")
    figures = {f"b{batch}_{name.replace(' ', '_')}_s": t for name, t in best.items()}
    figures[f"b{batch}_static_over_generate"] = best["static"] / best["generate"]
    figures[f"b{batch}_compiled_over_generate"] = best["compiled"] / best["generate"]
    figures[f"b{batch}_compiled_over_floor"] = best["compiled"] / (methods["compiled"][2] / (rate * 1e9))
    print(f"  static: {best['generate'] / best['static']:.2f}x faster than generate, compiled "
          f"{best['generate'] / best['compiled']:.2f}x, compiled {other} {best['generate'] / best[f'compiled {other}']:.2f}x; "
          f"per decoding step {1e3 * best['static'] / new:.2f} / {1e3 * best['compiled'] / new:.2f} / "
          f"{1e3 * best[f'compiled {other}'] / new:.2f} ms")
    return figures


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained model folder (default: an untrained small model)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--analysis-faces", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="where --model runs (cpu or cuda)")
    args = parser.parse_args(argv)
    t2f = Talk2Face.from_pretrained(args.model, args.device) if args.model else untrained_model()
    rate, where, _ = best_matmul_rate()
    print(f"decoder: {sum(p.numel() for p in t2f.model.parameters()) / 1e6:.1f}M parameters, {t2f.n_image_tokens} "
          f"codes per face, bf16 autocast {'on' if t2f.bf16 else 'off'}; best matmul rate {rate:,.0f} GFLOP/s "
          f"({where}), {torch.get_num_threads()} threads")
    variants = Variants(t2f)
    # the first call of the compiled path, on an empty compile cache (later processes find it on disk)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="talk2face-inductor-")
    torch._dynamo.reset()
    first = _seconds(variants.faces(PROMPTS[:2], variants.compiled))
    other = _seconds(variants.faces(PROMPTS[:3], variants.compiled))
    torch._dynamo.reset()  # as a later process: traced again, its kernels found in the on-disk cache
    cached = _seconds(variants.faces(PROMPTS[:2], variants.compiled))
    print(f"compiled: first call {first:.1f} s (compiling, empty cache), then another batch size {other:.2f} s "
          f"(no recompilation); first call of a later process (on-disk cache) {cached:.1f} s")
    figures = {"compile_first_call_s": first, "compile_other_batch_s": other, "compile_cached_first_call_s": cached}
    for batch in args.batches:
        figures |= compare(t2f, variants, batch, args.repeats, rate)
    t2f.decoder = variants.static
    size = t2f.vqgan.image_size
    rng = np.random.default_rng(0)
    faces = [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(args.analysis_faces)]
    age = min(_seconds(lambda: t2f.estimate_age(faces)) for _ in range(2))
    attrs = min(_seconds(lambda: t2f.classify_attributes(faces)) for _ in range(2))
    figures["age_images_per_s"] = len(faces) / age
    figures["attributes_images_per_s"] = len(faces) / attrs
    print(f"{len(faces)} faces: age {len(faces) / age:,.0f} images/s (1 forward pass per batch), "
          f"attributes {len(faces) / attrs:,.0f} images/s (2 forward passes per batch)")
    return figures


if __name__ == "__main__":
    main()
