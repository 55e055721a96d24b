"""Talk2Face: every face task of one trained model behind a Python API.

    model = Talk2Face.from_pretrained("runs/synface-small/final")
    faces = model.text_to_face(["a smiling old man with glasses"], num_samples=4, seed=0)
    model.caption(["face.png"]); model.estimate_age(["face.png"]); model.classify_attributes(["face.png"])
    model.edit(["face.png"], ["make him smile"])
    model.edit_in_place(["face.png"], "Eyeglasses", True)   # no edit pairs needed (real data)
    model.prompt("describe this face: {face}", face="face.png")   # any template string

Each task is prompted with its template's first paraphrase. Faces come out of batched decoding
over a static KV cache (talk2face.decoding), constrained to exactly h*w image codes and optionally
guided (CFG in one batched pass); age and attributes are read from answer-token probabilities in a fixed
number of forward passes, never by sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import DynamicCache, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from talk2face import shipped
from talk2face.checkpoint import TEMPLATES_SUBDIR, check_checkpoint_folder, load_decoder, read_card, vqgan_folder
from talk2face.data.images import ImageInput, load_images, to_pil
from talk2face.data.record import ATTRIBUTES
from talk2face.decoding import Rule, StaticDecoder
from talk2face.device import check_device
from talk2face.errors import UserError
from talk2face.edit_regions import regenerated_cells, target_phrase
from talk2face.logits_processors import AllowedRange, GuidedSampler, KeepCodes
from talk2face.sampling import Sampling
from talk2face.lexicon import WORD, Lexicon, needs_rewriting, vocabulary_words
from talk2face.templates import Parsed, Templates
from talk2face.vocab import Vocab
from talk2face.vqgan import VQGAN


def _refuse_empty(texts: Sequence[str], what: str) -> None:
    """A blank prompt is a mistake, not a request for an unconditional sample (say what is wanted)."""
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        raise UserError(f"the {what} is empty (number {blank[0] + 1} of {len(texts)}): write what you want")


class Talk2Face:
    """One decoder, its vocabulary, image tokenizer and templates.

    Args:
        model: the Llama decoder.
        vocab: the unified vocabulary.
        vqgan: the image tokenizer the codes come from.
        templates: the task templates the model was trained with.
        attributes: the attribute names the model was trained to list, in ATTRIBUTES order.
        max_length: the decoder's context.
        bf16: run the decoder under bf16 autocast.
        caption_words: the words of the training captions. When given, words of a description or
            instruction that the model never read are rewritten to related words it did read
            (talk2face.lexicon, WordNet); set `rewrite_unknown_words = False` to turn it off.
        tasks: the tasks the model was trained on (default: every task its templates define).
    """

    def __init__(
        self, model: PreTrainedModel, vocab: Vocab, vqgan: VQGAN, templates: Templates,
        attributes: Sequence[str], max_length: int, bf16: bool = False, caption_words: Sequence[str] = (),
        tasks: Sequence[str] | None = None,
    ) -> None:
        self.model = model.eval()
        self.vocab, self.vqgan, self.templates = vocab, vqgan.eval(), templates
        self.attributes = [a for a in ATTRIBUTES if a in set(attributes)]
        self.max_length = max_length
        self.n_image_tokens = vqgan.grid_size[0] * vqgan.grid_size[1]
        self.device = next(model.parameters()).device
        self.bf16 = bf16
        self.caption_words = list(caption_words)
        self.rewrite_unknown_words = bool(self.caption_words)
        self.tasks = list(templates.tasks if tasks is None else tasks)
        # None: transformers' `generate` with the logits processors, the reference the static decoder
        # matches, and the path of a model whose layers it does not compute (biases, another activation)
        self.decoder: StaticDecoder | None = StaticDecoder(self.model) if StaticDecoder.supports(model.config) else None

    @cached_property
    def lexicon(self) -> Lexicon:
        """The unknown-word rewriter, built on first use (WordNet loads in about a second)."""
        return Lexicon(self.caption_words, keep=self.known_words)

    @cached_property
    def known_words(self) -> frozenset[str]:
        """Words read as they are: the training captions' and the text vocabulary's whole words."""
        text = vocabulary_words(self.vocab.tokenizer.get_vocab(), self.vocab.space_marker)
        return frozenset(w.lower() for w in [*self.caption_words, *text])

    def free_text(self, text: str) -> str:
        """A user's description or instruction as the model reads it (unknown words rewritten).
        WordNet is loaded only for a text with a word the model does not know."""
        unknown = self.rewrite_unknown_words and any(needs_rewriting(w, self.known_words) for w in WORD.findall(text))
        return self.lexicon(text) if unknown else text

    @classmethod
    def from_pretrained(cls, path: str | Path = shipped.MODEL, device: str = "cpu", bf16: bool | None = None) -> Talk2Face:
        """Load a checkpoint folder written by `talk2face_train.train` (see talk2face.checkpoint).

        Args:
            path: the folder (default: the shipped SynFace model, models/synface).
            device: "cpu" or "cuda".
            bf16: bf16 autocast; default on for a GPU, off on a CPU (where it can run slower:
                README, Speed; python -m benchmarks.generation measures it).
        """
        path = check_checkpoint_folder(path)
        device = check_device(device)
        card = read_card(path)
        model = load_decoder(path).to(device)
        vqgan = VQGAN.from_pretrained(vqgan_folder(path), device=device)
        if bf16 is None:
            bf16 = device != "cpu"
        return cls(model, Vocab.from_pretrained(path), vqgan, Templates.load(path / TEMPLATES_SUBDIR),
                   card["attributes"], card["max_length"], bf16, card.get("caption_words", ()), card.get("tasks"))

    def compile(self) -> Talk2Face:
        """Decode with the static decoder's step `torch.compile`d into one graph (talk2face.decoding).
        Its first call compiles (about a minute on a 2-core CPU; seconds for later processes, which
        find the kernels in torch's on-disk cache), and any later batch size or prompt width reuses
        the graph; its speed is measured by `python -m benchmarks.generation` (README, Speed).
        Returns self."""
        if not StaticDecoder.supports(self.model.config):
            raise UserError("compile(): the static decoder does not compute this model's layers (biases, an "
                            "activation other than SiLU or dynamic rotary scaling); it decodes with generate")
        self.decoder = StaticDecoder(self.model, compiled=True)
        return self

    # ---- shared plumbing --------------------------------------------------------------------------

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    @torch.no_grad()
    def encode_faces(self, images: Sequence[ImageInput], batch_size: int = 64) -> list[np.ndarray]:
        """Images (paths, PIL, arrays) -> VQ code arrays (h*w,), preprocessed exactly as in training."""
        codes = []
        for start in range(0, len(images), batch_size):
            pixels = load_images(list(images[start : start + batch_size]), self.vqgan.image_size).to(self.device)
            codes += list(self.vqgan.encode(pixels).cpu().numpy())  # (B, h*w)
        return codes

    @torch.no_grad()
    def decode_faces(self, codes: torch.Tensor) -> list[Image.Image]:
        """Codes (B, h*w) -> PIL images."""
        return to_pil(self.vqgan.decode(codes.to(self.device)).cpu())

    def task_prompt_ids(self, task: str, unconditional: bool = False, **fields: Any) -> np.ndarray:
        """`<bos> prompt <sep>` ids of `task`'s first paraphrase (or its unconditional prompt), the
        input of that task's answer: for decoding of one's own (`fields` fill its placeholders:
        text=..., face=codes (h*w,), instruction=...)."""
        t = self.templates.get(task)
        text = t.unconditional_text if unconditional else t.prompt_texts[0]
        if text is None:
            raise UserError(f"{t.path}: task {task!r} has no unconditional prompt")
        sample = self.templates.render_raw(text, **fields)
        return self.vocab.prompt_ids(sample.prompt, sample.prompt_faces, self.max_length,
                                     min_answer=self.n_image_tokens + 2 if t.answers_with_face else 1)

    def _left_pad(self, rows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-pad id arrays into (B, T) input_ids and attention_mask, so answers start aligned."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.vocab.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, width - len(r) :] = r
            mask[i, width - len(r) :] = 1
        return torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)

    def _forward_left_padded(
        self, rows: Sequence[np.ndarray], use_cache: bool = False,
    ) -> tuple[CausalLMOutputWithPast, torch.Tensor, torch.Tensor]:
        """One forward pass over left-padded rows: (the model's output, (B, T) attention mask, (B, T)
        positions, which restart after the padding)."""
        ids, mask = self._left_pad(rows)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with self._autocast():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=use_cache)
        return out, mask, positions

    @torch.no_grad()
    def _logits(self, rows: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass over left-padded rows: ((B, T, V) float logits, (B, T) attention mask)."""
        out, mask, _ = self._forward_left_padded(rows)
        return out.logits.float(), mask

    @torch.no_grad()
    def _decode(
        self, ids: torch.Tensor, mask: torch.Tensor, new_tokens: int, rule: Rule,
        generator: torch.Generator | None = None, keep: tuple[torch.Tensor, torch.Tensor] | None = None,
        stop_id: int | None = None,
    ) -> torch.Tensor:
        """`new_tokens` after left-padded (N, P) prompts, by `rule`: (N, new_tokens or fewer) tokens.

        By the static decoder (talk2face.decoding), or with `decoder = None` by transformers'
        `generate` and the logits processors, which write the same tokens (tests/test_decoding.py).
        """
        with self._autocast():
            if self.decoder is not None:
                return self.decoder.decode(ids, mask, new_tokens, rule, generator, keep, stop_id)
            processors = [AllowedRange(*rule.allowed, rule.inside, rule.also_allowed)]
            if not rule.greedy:
                processors.append(GuidedSampler(rule.guidance, rule.temperature, rule.top_k, rule.top_p, generator))
            if keep is not None:
                processors.append(KeepCodes(keep[0], keep[1], ids.shape[1]))
            generated = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                min_new_tokens=new_tokens if stop_id is None else 0, do_sample=False, logits_processor=processors,
                pad_token_id=self.vocab.pad_id, eos_token_id=stop_id,
            )
        return generated[:, ids.shape[1] :]

    @torch.no_grad()
    def _generate_faces(
        self, cond: Sequence[np.ndarray], uncond: Sequence[np.ndarray] | None, sampling: Sampling, batch_size: int,
        keep: tuple[np.ndarray, np.ndarray] | None = None, same_as: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Sample exactly h*w codes after each `<bos> prompt <sep>`; returns codes (B, h*w).

        `keep` = (source codes (B, h*w), mask (B, h*w)): where the mask is set, the source code is
        forced instead of sampled. `same_as` = source codes (B, h*w) of an edit by a model that
        writes `<same>` (data.edit_same): the token may be sampled and stands for the source's code.
        """
        n = self.n_image_tokens
        guided = uncond is not None and sampling.cfg_scale is not None and sampling.cfg_scale != 1.0
        generator = torch.Generator(self.device)
        generator.manual_seed(int(sampling.seed) if sampling.seed is not None else int(torch.randint(2**31, ())))
        cells = self.vocab.cell_token_range if same_as is not None else self.vocab.image_token_range
        rule = Rule((cells.start, cells.stop), guidance=sampling.cfg_scale if guided else None,
                    temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p)
        twins = 2 if guided else 1  # the unconditional twins keep the same cells
        out = []
        for start in range(0, len(cond), batch_size):
            rows = [np.append(r, self.vocab.boi_id) for r in cond[start : start + batch_size]]
            if guided:
                rows += [np.append(r, self.vocab.boi_id) for r in uncond[start : start + batch_size]]
            ids, mask = self._left_pad(rows)
            forced = None
            if keep is not None:
                codes = torch.from_numpy(keep[0][start : start + batch_size].astype(np.int64))  # (b, h*w)
                kept = torch.from_numpy(keep[1][start : start + batch_size])  # (b, h*w)
                forced = (self.vocab.codes_to_ids(codes).repeat(twins, 1).to(self.device),
                          kept.repeat(twins, 1).to(self.device))
            batch = len(rows) // twins
            face = self._decode(ids, mask, n, rule, generator, forced)[:batch]  # (b, h*w)
            if same_as is not None:
                source = self.vocab.codes_to_ids(torch.from_numpy(same_as[start : start + batch].astype(np.int64)))
                face = torch.where(face == self.vocab.same_id, source.to(face.device), face)
            out.append(self.vocab.ids_to_codes(face))  # (b, h*w)
        return torch.cat(out)

    @torch.no_grad()
    def _generate_text(self, prompts: Sequence[np.ndarray], max_new_tokens: int, batch_size: int) -> list[str]:
        """Greedy text answers (no image tokens, no specials but `<eos>`), decoded up to `<eos>`."""
        rule = Rule((self.vocab.n_text, len(self.vocab)), inside=False, also_allowed=(self.vocab.eos_id,), greedy=True)
        answers = []
        for start in range(0, len(prompts), batch_size):
            ids, mask = self._left_pad(prompts[start : start + batch_size])
            for row in self._decode(ids, mask, max_new_tokens, rule, stop_id=self.vocab.eos_id).cpu().numpy():
                end = np.flatnonzero(row == self.vocab.eos_id)
                answers.append(self.vocab.decode_text(row[: end[0]] if len(end) else row).strip())
        return answers

    # ---- tasks ------------------------------------------------------------------------------------

    def text_to_face(
        self, texts: str | Sequence[str], num_samples: int = 1, cfg_scale: float | None = 3.0,
        top_k: int = 0, top_p: float = 1.0, temperature: float = 1.0, seed: int | None = None,
        rerank: int = 1, batch_size: int = 32,
    ) -> list[Image.Image]:
        """Generate faces from descriptions.

        Args:
            texts: one description or several.
            num_samples: faces per description.
            cfg_scale: classifier-free guidance scale (None or 1: unguided).
            top_k, top_p, temperature: sampling filters (0 / 1.0: off).
            seed: makes the samples reproducible.
            rerank: sample this many candidates per kept face and keep those whose caption
                likelihood log P(text | face) under this same model is highest (no CLIP needed).
            batch_size: prompts per generate call (guided calls run twice as many rows).
        Returns:
            len(texts) * num_samples PIL images, the samples of each text together.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        _refuse_empty(texts, "description")
        if num_samples < 1 or rerank < 1:
            raise UserError(f"num_samples={num_samples}, rerank={rerank}: both must be at least 1")
        per_text = num_samples * rerank
        read = [self.free_text(t) for t in texts]
        cond = [self.task_prompt_ids("text_to_face", text=t) for t in read for _ in range(per_text)]
        uncond = [self.task_prompt_ids("text_to_face", unconditional=True)] * len(cond)
        codes = self._generate_faces(cond, uncond, Sampling(cfg_scale, temperature, top_k, top_p, seed), batch_size)
        if rerank > 1:
            scores = self.caption_likelihood(codes, [t for t in read for _ in range(per_text)])  # the words it drew from
            best = scores.view(len(texts), per_text).topk(num_samples, dim=1).indices  # (N, num_samples)
            codes = codes.view(len(texts), per_text, -1).gather(1, best[..., None].expand(-1, -1, codes.shape[-1]))
            codes = codes.flatten(0, 1)
        return self.decode_faces(codes)

    def edit(
        self, images: Sequence[ImageInput], instructions: str | Sequence[str], cfg_scale: float | None = 3.0,
        top_k: int = 0, top_p: float = 1.0, temperature: float = 1.0, seed: int | None = None, batch_size: int = 32,
        candidates: int = 8, keep_weight: float = 3.0, plan: bool = True,
    ) -> list[Image.Image]:
        """Edit faces by instructions ("make her smile", "add glasses"); feed the result back to chain edits.

        A model trained on `edit_plan` first names the change each instruction asks for
        (`plan_edits`). For an attribute it reads, only that attribute's region is redrawn:
        `candidates` draws by the edit task (the face and the instruction) and as many by the
        text-to-face task prompted for the change (the route of `edit_in_place`), and of those the
        draw the model itself reads as showing the change, with the other attributes as they
        were (weighed by `keep_weight`), is kept (README, edits). Other instructions (an age, an
        unreadable plan, `plan=False`, or a model without `edit_plan`) are decoded whole by the
        edit task.

        Args:
            images: the faces to edit.
            instructions: one per image, or one for all.
            candidates: draws per prompt of a planned edit.
            keep_weight: how much keeping the other attributes counts against showing the change.
            plan: use the model's plan where it has one.
        Returns:
            the edited faces, one per image.
        """
        instructions = [instructions] * len(images) if isinstance(instructions, str) else list(instructions)
        _refuse_empty(instructions, "instruction")
        if len(instructions) != len(images):
            raise UserError(f"edit: {len(images)} images but {len(instructions)} instructions")
        faces = np.stack(self.encode_faces(images))  # (N, h*w)
        read = [self.free_text(i) for i in instructions]
        cond = [self.task_prompt_ids("edit", face=f, instruction=i) for f, i in zip(faces, read)]
        uncond = [self.task_prompt_ids("edit", unconditional=True, face=f) for f in faces]
        sampling = Sampling(cfg_scale, temperature, top_k, top_p, seed)
        changes = self.plan_edits(read, batch_size) if plan and "edit_plan" in self.tasks else [None] * len(faces)
        planned = [i for i, c in enumerate(changes) if c is not None and c[0] in self.attributes]
        whole = sorted(set(range(len(faces))) - set(planned))
        codes = torch.from_numpy(faces.astype(np.int64)).to(self.device)  # (N, h*w), every row replaced below
        if planned:
            asked = [changes[i] for i in planned]
            drawn = [self.task_prompt_ids("text_to_face", text=target_phrase(a, v)) for a, v in asked]
            prompts = [([cond[i] for i in planned], [uncond[i] for i in planned]),
                       (drawn, [self.task_prompt_ids("text_to_face", unconditional=True)] * len(planned))]
            codes[planned] = self._redraw_region(faces[planned], asked, prompts, candidates, keep_weight, sampling,
                                                 batch_size).to(codes)
        if whole:
            same_as = faces[whole] if self.vocab.same_id is not None else None
            codes[whole] = self._generate_faces([cond[i] for i in whole], [uncond[i] for i in whole], sampling,
                                                batch_size, same_as=same_as).to(codes)
        return self.decode_faces(codes)

    def plan_edits(self, instructions: Sequence[str], batch_size: int = 32) -> list[tuple[str, bool | int] | None]:
        """The change each instruction asks for, as the model names it (task `edit_plan`):
        ("Eyeglasses", True), ("age", 45), or None where its answer is not a change."""
        if "edit_plan" not in self.tasks:
            raise UserError(f"this model was not trained on edit_plan; it knows {self.tasks}")
        prompts = [self.task_prompt_ids("edit_plan", instruction=i) for i in instructions]
        answers = self._generate_text(prompts, max_new_tokens=8, batch_size=batch_size)
        parsed = [self.templates.parse("edit_plan", a) for a in answers]
        return [p.value if p.ok else None for p in parsed]

    def edit_in_place(
        self, images: Sequence[ImageInput], attribute: str, value: bool, candidates: int = 8,
        cfg_scale: float | None = 3.0, temperature: float = 1.0, top_k: int = 0, seed: int | None = None,
        batch_size: int = 32, keep_weight: float = 3.0,
    ) -> list[Image.Image]:
        """Edit without edit pairs: set `attribute` to `value` by regenerating only its region's codes.

        For models trained on data with no before/after pairs (see talk2face.edit_regions): the
        source codes outside the attribute's region are kept, the cells inside are sampled by the
        text-to-face task prompted for the wanted value, and of `candidates` samples per face the
        one the model's own attribute reading finds most likely to show the change and nothing
        else (weighed by `keep_weight`) is returned (`_redraw_region`).
        """
        if attribute not in self.attributes:
            raise UserError(f"this model was not trained on attribute {attribute!r}; it knows {self.attributes}")
        faces = self.encode_faces(images)
        cond = [self.task_prompt_ids("text_to_face", text=target_phrase(attribute, value))] * len(faces)
        uncond = [self.task_prompt_ids("text_to_face", unconditional=True)] * len(faces)
        codes = self._redraw_region(np.stack(faces), [(attribute, value)] * len(faces), [(cond, uncond)], candidates,
                                    keep_weight, Sampling(cfg_scale, temperature, top_k, seed=seed), batch_size)
        return self.decode_faces(codes)

    def _redraw_region(
        self, sources: np.ndarray, changes: Sequence[tuple[str, bool]],
        prompts: Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]], candidates: int, keep_weight: float,
        sampling: Sampling, batch_size: int,
    ) -> torch.Tensor:
        """Redraw each face's change region and keep the best draw: (N, h*w) codes.

        sources: (N, h*w) codes; changes: per face (attribute, value); prompts: one or more
        (cond, uncond) pairs of per-face prompt rows, each drawing `candidates` candidates. Outside
        the attribute's region the source codes are forced. The kept candidate maximises
        log P(attribute = value) + keep_weight * the mean over the other attributes of
        log P(other = the model's reading of the source), all read by the model itself: the asked
        change, and nothing else.
        """
        if candidates < 1:
            raise UserError(f"candidates must be at least 1, got {candidates}")
        if not keep_weight >= 0:
            raise UserError(f"keep_weight must be >= 0, got {keep_weight}")
        n = len(sources)
        kept = np.stack([~regenerated_cells(a, self.vqgan.grid_size) for a, _ in changes])  # (N, h*w)
        rows = np.repeat(np.arange(n), candidates)  # (N*C,) the face of each candidate
        draws = [self._generate_faces([cond[i] for i in rows], [uncond[i] for i in rows], sampling, batch_size,
                                      keep=(sources[rows], kept[rows])).view(n, candidates, -1)
                 for cond, uncond in prompts]
        pool = torch.cat(draws, 1)  # (N, P*C, h*w)
        per_face = pool.shape[1]
        p_cand = self._attribute_matrix(list(pool.flatten(0, 1).cpu().numpy()), batch_size).view(n, per_face, -1)
        p_source = self._attribute_matrix(list(sources), batch_size)[:, None]  # (N, 1, A)
        agree = torch.where(p_source >= 0.5, p_cand, 1 - p_cand).clamp_min(1e-6).log()  # (N, P*C, A)
        asked = torch.zeros_like(agree, dtype=torch.bool)
        asked[torch.arange(n), :, [self.attributes.index(a) for a, _ in changes]] = True
        wanted = torch.tensor([bool(v) for _, v in changes])[:, None]  # (N, 1)
        p_target = p_cand[asked].view(n, per_face)
        change = torch.where(wanted, p_target, 1 - p_target).clamp_min(1e-6).log()  # (N, P*C)
        others = agree.masked_fill(asked, 0.0).sum(-1) / max(1, agree.shape[-1] - 1)  # (N, P*C); 0 with one attribute
        best = (change + keep_weight * others).argmax(1)  # (N,)
        return pool[torch.arange(n), best.to(pool.device)]

    def _attribute_matrix(self, faces: Sequence[np.ndarray], batch_size: int = 64) -> torch.Tensor:
        """P(attribute present) of every trained attribute: (N, A), columns in `self.attributes` order."""
        probs = self._attribute_probs(faces, batch_size=batch_size)
        return torch.tensor([[p[a] for a in self.attributes] for p in probs])

    def caption(self, images: Sequence[ImageInput], max_new_tokens: int = 48, batch_size: int = 32) -> list[str]:
        """Describe each face in words (greedy decoding)."""
        prompts = [self.task_prompt_ids("caption", face=f) for f in self.encode_faces(images)]
        return self._generate_text(prompts, max_new_tokens, batch_size)

    def age_distribution(self, images: Sequence[ImageInput], batch_size: int = 64) -> torch.Tensor:
        """P(age = 0..120) for each face, never by sampling: (B, 121).

        Where every age is one token (this project's BPE), it is the first answer token's softmax
        over the 121 number tokens, from ONE forward pass. Where ages are several tokens (a
        SentencePiece or pretrained tokenizer that writes "34" as "3" "4"), each age's whole answer
        "<its tokens> <eos>" is scored by its log-probability (`_answer_log_probs`: one KV-cached
        pass over the prompts, one over the 121 answers per face), normalised over the ages. The
        <eos> makes the ages disjoint answers: without it, P("1") would include every "12...".
        """
        prompts = [self.task_prompt_ids("age", face=f) for f in self.encode_faces(images)]
        batches = [prompts[start : start + batch_size] for start in range(0, len(prompts), batch_size)]
        if self.vocab.number_token_ids is None:
            answers = [np.append(ids, self.vocab.eos_id) for ids in self.vocab.age_ids]
            return torch.cat([self._answer_log_probs(batch, answers).softmax(-1).cpu() for batch in batches])
        numbers = torch.from_numpy(self.vocab.number_token_ids).to(self.device)
        out = []
        for batch in batches:
            logits, _ = self._logits(batch)
            out.append(logits[:, -1, numbers].softmax(-1).cpu())  # (b, 121): the first answer token
        return torch.cat(out)

    @torch.no_grad()
    def _answer_log_probs(self, prompts: Sequence[np.ndarray], answers: Sequence[np.ndarray]) -> torch.Tensor:
        """log P(answer | prompt) of every answer after every prompt, teacher-forced: (B, C).

        The prompts run once, left-padded, filling the KV cache; then, prompt by prompt, its cache
        is shared by the C answers, run right-padded in one batch (the padding after an answer's
        end is causal-masked from it and not counted), so a prompt is never recomputed per answer.

        Args:
            prompts: B `<bos> prompt <sep>` id rows.
            answers: C answer id rows (e.g. an age's tokens and `<eos>`).
        Returns:
            (B, C) float32 log-probabilities, on the model's device.
        """
        width = max(len(a) for a in answers)
        tokens = torch.full((len(answers), width), self.vocab.pad_id, dtype=torch.long)  # (C, W)
        for j, a in enumerate(answers):
            tokens[j, : len(a)] = torch.from_numpy(np.asarray(a, dtype=np.int64))
        tokens = tokens.to(self.device)
        counted = (torch.arange(width)[None] < torch.tensor([len(a) for a in answers])[:, None]).to(self.device)  # (C, W)
        out, mask, position_ids = self._forward_left_padded(prompts, use_cache=True)  # mask, positions: (B, P)
        scores = out.logits[:, -1].float().log_softmax(-1)[:, tokens[:, 0]]  # (B, C): each answer's first token
        if width == 1:
            return scores
        n = len(answers)
        layers = list(out.past_key_values)  # (keys, values, ...) per layer, each (B, heads, P, d)
        following = position_ids[:, -1:] + 1 + torch.arange(width - 1, device=self.device)  # (B, W-1)
        for i in range(len(prompts)):
            cache = DynamicCache([(k[i : i + 1].expand(n, -1, -1, -1), v[i : i + 1].expand(n, -1, -1, -1))
                                  for k, v, *_ in layers])
            rows_mask = torch.cat([mask[i : i + 1].expand(n, -1), counted[:, :-1].long()], 1)  # (C, P+W-1)
            with self._autocast():
                logits = self.model(input_ids=tokens[:, :-1], attention_mask=rows_mask, past_key_values=cache,
                                    position_ids=following[i : i + 1].expand(n, -1), use_cache=True).logits
            logp = logits.float().log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]  # (C, W-1)
            scores[i] += (logp * counted[:, 1:]).sum(1)
        return scores

    def estimate_age(self, images: Sequence[ImageInput], batch_size: int = 64) -> list[float]:
        """Expected age under the model's distribution over age answers."""
        probs = self.age_distribution(images, batch_size)  # (B, 121)
        return (probs @ torch.arange(probs.shape[1], dtype=probs.dtype)).tolist()

    def classify_attributes(
        self, images: Sequence[ImageInput], names: Sequence[str] | None = None, batch_size: int = 64,
    ) -> list[dict[str, float]]:
        """P(attribute present) for each face, from the answer-token probabilities.

        The fixed-order answer "smiling yes, eyeglasses no, ..." is teacher-forced in two passes:
        the first with every slot "yes", the second with each slot set to the first pass's more
        likely answer, so each slot's P(yes) / (P(yes) + P(no)) is conditioned on the model's own
        earlier answers, as in greedy decoding, at the cost of two forward passes per batch.

        Args:
            images: the faces.
            names: attributes to return (default: all the model was trained on).
        Returns:
            one {attribute: probability} per face.
        """
        return self._attribute_probs(self.encode_faces(images), names, batch_size)

    def _attribute_probs(
        self, faces: Sequence[np.ndarray], names: Sequence[str] | None = None, batch_size: int = 64,
    ) -> list[dict[str, float]]:
        """`classify_attributes` on faces given as code arrays (h*w,)."""
        names = list(self.attributes if names is None else names)
        unknown = sorted(set(names) - set(self.attributes))
        if unknown:
            raise UserError(f"this model was not trained on attribute(s) {unknown}; it knows {self.attributes}")
        verbalizer = self.templates.get("attributes").attributes
        yes, no = self.vocab.token_id(verbalizer.yes), self.vocab.token_id(verbalizer.no)
        answer = self.vocab.encode(verbalizer.render({a: True for a in self.attributes}))  # (A,) all "yes"
        slots = np.flatnonzero(answer == yes)
        if len(slots) != len(self.attributes):
            raise UserError(f"the attribute answer has {len(slots)} yes-slots for {len(self.attributes)} attributes")
        prompts = [self.task_prompt_ids("attributes", face=f) for f in faces]
        results: list[dict[str, float]] = []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            answers = np.tile(answer, (len(chunk), 1))  # (b, A)
            for _ in range(2):
                rows = [np.concatenate([p, a]) for p, a in zip(chunk, answers)]
                logits, _ = self._logits(rows)  # (b, T, V), right-aligned: the answer is the last A tokens
                at = logits.shape[1] - len(answer) + slots - 1  # positions that predict each slot
                pair = logits[:, at][..., [yes, no]].softmax(-1)  # (b, n_attr, 2)
                p_yes = pair[..., 0].cpu().numpy()
                answers[:, slots] = np.where(p_yes >= 0.5, yes, no)
            results += [{a: float(p[self.attributes.index(a)]) for a in names} for p in p_yes]
        return results

    @torch.no_grad()
    def caption_likelihood(self, codes: torch.Tensor, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Mean log P(text | face) per token under the caption task: (B,). Used to rerank samples."""
        scores = []
        for start in range(0, len(texts), batch_size):
            rows, lengths = [], []
            for c, t in zip(codes[start : start + batch_size], texts[start : start + batch_size]):
                target = np.append(self.vocab.encode(t), self.vocab.eos_id)
                rows.append(np.concatenate([self.task_prompt_ids("caption", face=c.cpu().numpy()), target]))
                lengths.append(len(target))
            logits, _ = self._logits(rows)  # (b, T, V)
            logp = logits.log_softmax(-1)
            for i, (row, n) in enumerate(zip(rows, lengths)):
                target = torch.from_numpy(row[-n:]).to(self.device)
                scores.append(logp[i, -n - 1 : -1].gather(-1, target[:, None]).mean())
        return torch.stack(scores).cpu()

    def prompt(self, template: str, max_new_tokens: int = 48, read_as: str | None = None,
               **fields: Any) -> str | Image.Image | Parsed:
        """Answer any template string, e.g. "describe this face: {face}" or "to image: {text}".

        `{face}` fields take an image (path, PIL, array) or a list of them; other fields text.
        The model's first answer token decides the modality: `<boi>` starts a face (returned as a
        PIL image), anything else text (returned as a string). `read_as` names a task whose
        template reads the text answer back into a value (`Parsed`: an int age, an attribute
        dict, a caption; `ok` False with the reason when the text is not such an answer).
        """
        _refuse_empty([template], "template")
        if read_as is not None:
            self.templates.get(read_as)  # an unknown task is refused before any work
        if "face" in fields:
            faces = fields["face"] if isinstance(fields["face"], (list, tuple)) else [fields["face"]]
            fields["face"] = self.encode_faces(faces)
        fields = {k: self.free_text(v) if isinstance(v, str) else v for k, v in fields.items()}
        sample = self.templates.render_raw(template, **fields)
        ids = self.vocab.prompt_ids(sample.prompt, sample.prompt_faces, self.max_length)
        logits, _ = self._logits([ids])
        first = logits[0, -1]
        first[self.vocab.image_token_range.start :] = -float("inf")  # an answer starts with text or <boi>
        if int(first.argmax()) == self.vocab.boi_id:
            if read_as is not None:
                raise UserError(f"the template {template!r} was answered with a face, which cannot be read as {read_as!r}")
            codes = self._generate_faces([ids], None, Sampling(), 1)
            return self.decode_faces(codes)[0]
        answer = self._generate_text([ids], max_new_tokens, 1)[0]
        return answer if read_as is None else self.templates.parse(read_as, answer)
