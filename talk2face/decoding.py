"""Lean decoding: a static KV cache and one step function for faces and text answers.

`model.generate` spends most of a step of this small decoder outside the arithmetic (README,
Speed): cache objects, mask building, logits processors and stopping criteria, a few hundred small
ops and their Python. Here, as in gpt-fast (PyTorch team, 2023) and LlamaGen's static-cache
generation, the stock model reads the prompt once (its own masks, the prefix-LM hook included)
into preallocated key / value tensors, and every later token is one call of `step`: the token
embedding (plus its face-grid cell), every layer over the static cache, the constraint, guidance,
filters and the draw. `StaticDecoder(compiled=True)` runs that call as one `torch.compile`d graph,
dynamic in the batch and the cache length, so a new batch size does not compile again.

It writes what `model.generate` with `talk2face.logits_processors` writes for the same seed: the
layers are the Llama layer's own arithmetic on its own weights (q/k/v and gate/up concatenated,
so one matmul each), and the draw is the same exponential race on the same uniform stream
(tests/test_decoding.py compares codes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.fx.experimental import _config as fx_config
from transformers import PreTrainedModel
from transformers.models.llama.modeling_llama import rotate_half

from talk2face.face_grid import FaceGridEmbedding
from talk2face.logits_processors import allowed_ids, filter_logits, guide, race


@dataclass(frozen=True)
class Rule:
    """How a step turns logits into a token; fixed for one `decode` call (compiled: one graph per rule).

    allowed: [start, stop) of the ids that may be written (or that may not, with inside=False);
    also_allowed: ids allowed besides (a text span's `<eos>`); guidance: classifier-free guidance
    scale, rows [B, 2B) being the unconditional twins of rows [0, B) (None: unguided); temperature,
    top_k, top_p: the filters (1.0 / 0 / 1.0: off); greedy: argmax instead of a draw.
    """

    allowed: tuple[int, int]
    inside: bool = True
    also_allowed: tuple[int, ...] = ()
    guidance: float | None = None
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    greedy: bool = False

    @property
    def span(self) -> tuple[int, int] | None:
        """[start, stop) when the allowed ids are that one range (a face's codes), else None: a
        step then filters and draws over those logits only, the others being -inf anyway."""
        return self.allowed if self.inside and not self.also_allowed else None

    def allowed_ids(self, vocab_size: int, device: torch.device) -> torch.Tensor:
        """(V,) bool, True for the ids this rule lets a step write (as `AllowedRange` lets them)."""
        return allowed_ids(vocab_size, *self.allowed, self.inside, self.also_allowed, device)

    def pick(self, logits: torch.Tensor, allowed: torch.Tensor, uniform: torch.Tensor | None) -> torch.Tensor:
        """(N, V) float logits, (V,) allowed ids, (B, V) U[0, 1) draws (None when greedy) -> (N,) tokens."""
        logits = logits.masked_fill(~allowed, -float("inf"))
        if self.guidance is not None:
            logits = guide(logits, self.guidance)  # (N / 2, V)
        if self.greedy:
            tokens = logits.argmax(-1)
        else:
            tokens = race(filter_logits(logits, self.temperature, self.top_k, self.top_p).softmax(-1), uniform)
        return tokens.repeat(2) if self.guidance is not None else tokens  # the twin follows its row


class _Layer(NamedTuple):
    """One Llama layer's weights, as the step uses them (q/k/v and gate/up each one matrix)."""

    attention_norm: torch.Tensor  # (H,)
    qkv: torch.Tensor  # (Hq*D + 2*Hkv*D, H)
    out: torch.Tensor  # (H, Hq*D)
    mlp_norm: torch.Tensor  # (H,)
    gate_up: torch.Tensor  # (2*I, H)
    down: torch.Tensor  # (H, I)


class StaticDecoder:
    """Decodes from a stock `LlamaForCausalLM` (face-grid embeddings allowed) with a static KV cache.

    Args:
        model: the decoder, one that `supports` (what `talk2face.modeling` builds, and most Llamas).
        compiled: run each step through `torch.compile` (one graph per rule, dynamic in the batch
            and the cache length, so new batch sizes do not compile afresh).
    """

    def __init__(self, model: PreTrainedModel, compiled: bool = False) -> None:
        config = model.config
        self.model = model
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.q_heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.eps = config.rms_norm_eps
        self.scaling = self.head_dim**-0.5
        self.compiled = compiled
        self._steps: dict[Rule, object] = {}

    @staticmethod
    def supports(config) -> bool:
        """Whether the step's arithmetic is this model's: Llama layers without biases, a SiLU MLP,
        and rotary angles that do not change with the sequence's length (not "dynamic" scaling)."""
        rope = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
        return (config.model_type == "llama" and not config.attention_bias and not config.mlp_bias
                and config.hidden_act == "silu" and rope != "dynamic")

    def _weights(self, span: torch.Tensor | None) -> tuple[list[_Layer], torch.Tensor]:
        """The layers' weights, concatenated afresh at each call (so they follow the model's), and the
        output projection: (V, H), or (K, H) its rows for the span's ids, the only logits a face's step
        needs. Under autocast the matrices are cast here once, as autocast would cast them at every step."""
        device = self.model.lm_head.weight.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None

        def matrix(*weights: torch.Tensor) -> torch.Tensor:
            return torch.cat(weights).to(dtype or weights[0].dtype)

        layers = []
        for layer in self.model.model.layers:
            a, m = layer.self_attn, layer.mlp
            layers.append(_Layer(
                layer.input_layernorm.weight, matrix(a.q_proj.weight, a.k_proj.weight, a.v_proj.weight),
                matrix(a.o_proj.weight), layer.post_attention_layernorm.weight,
                matrix(m.gate_proj.weight, m.up_proj.weight), matrix(m.down_proj.weight),
            ))
        head = self.model.lm_head.weight
        return layers, matrix(head if span is None else head[span])

    def _step_fn(self, rule: Rule):
        if rule not in self._steps:
            def step(*args):
                return self._step(rule, *args)

            if self.compiled:
                graph = torch.compile(step, dynamic=True, fullgraph=True, options={"cpp_wrapper": True})

                def step(*args):
                    # one graph for every size: no duck sizing (a batch that happens to equal the head
                    # count or the cache length would tie those sizes together) and no special case
                    # for a size of 1 (a lone row, or one guided pair), either of which would recompile
                    with fx_config.patch(use_duck_shape=False, backed_size_oblivious=True):
                        return graph(*args)

            self._steps[rule] = step
        return self._steps[rule]

    def _norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """LlamaRMSNorm's arithmetic: in fp32, cast back, then scaled. (N, 1, H) -> (N, 1, H)."""
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * y.to(x.dtype)

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """One query per row over its cache: (N, Hq, 1, D) queries, (N, Hkv, L, D) keys and values, (N, 1, 1, L)
        bool -> (N, Hq, 1, D).

        Eager: SDPA's fused CPU kernel. Compiled: written as products and sums, which inductor fuses
        into loops over the cache as it lies; SDPA stays an opaque kernel there, and matmuls would
        have it copy the keys transposed first (README, Speed: 0.76-0.85x the step's time)."""
        if not self.compiled:
            return F.scaled_dot_product_attention(q, keys, values, attn_mask=seen, scale=self.scaling,
                                                  enable_gqa=self.q_heads != self.kv_heads)
        n, _, _, d = q.shape
        q = q.view(n, self.kv_heads, -1, 1, d).float()  # (N, Hkv, G, 1, D): a key head's G query heads
        scores = (q * keys[:, :, None].float()).sum(-1) * self.scaling  # (N, Hkv, G, L)
        weights = scores.masked_fill(~seen, -float("inf")).softmax(-1)
        return (weights[..., None] * values[:, :, None].float()).sum(-2).to(values.dtype).view(n, -1, 1, d)

    def _embed(self, token: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """(N,) tokens, (N,) their face-grid cells -> (N, 1, H) input embeddings."""
        embed = self.model.model.embed_tokens
        x = F.embedding(token, embed.weight)  # (N, H)
        if isinstance(embed, FaceGridEmbedding):
            x = x + embed.cells.weight[cell.clamp(max=embed.n_cells - 1)] * embed.is_image(token)[:, None].to(x.dtype)
        return x[:, None]

    def _step(
        self, rule: Rule, layers: list[_Layer], head: torch.Tensor, token: torch.Tensor, cell: torch.Tensor,
        cos: torch.Tensor, sin: torch.Tensor, slot: torch.Tensor, length: int, valid: torch.Tensor, keys: list[torch.Tensor],
        values: list[torch.Tensor], allowed: torch.Tensor, span: torch.Tensor | None, uniform: torch.Tensor | None,
        keep_token: torch.Tensor, keep: torch.Tensor,
    ) -> torch.Tensor:
        """One token for every row: the forward pass over the static cache, then `rule`.

        layers, head: the weights (`_weights`); token, cell: (N,) the token written last and its
        face-grid cell; cos, sin: (N, D) its rotary angles; slot: (1,) its index in the cache, length = slot + 1: attention reads the
        first `length` positions only (the rest is not written yet); valid: (N, S) keys written and
        not padding, keys / values: L x (N, Hkv, S, D), all three written at `slot` here; allowed:
        (V,), or (K,) over the span's ids; span: (K,) the ids of `rule.span` (None without one);
        uniform: (B, V) or None; keep_token, keep: (N,) a token forced where keep is set.
        Returns (N,) the next tokens.
        """
        n = len(token)
        cos, sin = cos[:, None, None], sin[:, None, None]  # (N, 1, 1, D): made here, so their 1s are not sizes of inputs
        valid[:, slot] = True
        seen = valid.narrow(1, 0, length)[:, None, None, :]  # (N, 1, 1, length)
        x = self._embed(token, cell)  # (N, 1, H)
        for layer, k_cache, v_cache in zip(layers, keys, values):
            heads = F.linear(self._norm(x, layer.attention_norm), layer.qkv).view(n, 1, -1, self.head_dim)
            qk, v = heads.transpose(1, 2).split([self.q_heads + self.kv_heads, self.kv_heads], 1)  # (N, heads, 1, D)
            qk = qk * cos + rotate_half(qk) * sin  # Llama's rotary embedding, queries and keys at once
            q, k = qk.split([self.q_heads, self.kv_heads], 1)
            k_cache[:, :, slot] = k.to(k_cache.dtype)  # index_put_ on a whole input: compiled in place
            v_cache[:, :, slot] = v.to(v_cache.dtype)
            # narrow, not a slice: its size is `length` itself, where a slice's is min(length, S)
            o = self._attend(q, k_cache.narrow(2, 0, length), v_cache.narrow(2, 0, length), seen)  # (N, Hq, 1, D)
            x = x + F.linear(o.transpose(1, 2).reshape(n, 1, -1), layer.out)
            gate, up = F.linear(self._norm(x, layer.mlp_norm), layer.gate_up).chunk(2, -1)  # (N, 1, I) each
            x = x + F.linear(F.silu(gate) * up, layer.down)
        logits = F.linear(self.model.model.norm(x)[:, -1], head).float()  # (N, V), or (N, K) over the span
        if span is None:
            token = rule.pick(logits, allowed, uniform)
        else:  # the same draw, filtered and drawn over the only ids it may write
            token = span[rule.pick(logits, allowed, None if uniform is None else uniform[:, span])]
        return torch.where(keep, keep_token, token)

    @torch.no_grad()
    def decode(
        self, ids: torch.Tensor, mask: torch.Tensor, new_tokens: int, rule: Rule,
        generator: torch.Generator | None = None, keep: tuple[torch.Tensor, torch.Tensor] | None = None,
        stop_id: int | None = None,
    ) -> torch.Tensor:
        """Write `new_tokens` after left-padded prompts.

        Args:
            ids, mask: (N, P) prompts, left-padded, and their attention mask (1 = token).
            new_tokens: tokens to write per row.
            rule: the constraint, guidance and draw (guided: N = 2B, twins last).
            generator: the random stream of the draws (ignored when greedy).
            keep: (tokens (N, new_tokens), mask (N, new_tokens) bool): the token forced where set.
            stop_id: stop early once every row has written it (text answers).
        Returns:
            (N, new_tokens or fewer) the tokens written (after a row's stop_id: whatever was drawn).
        """
        n, width = ids.shape
        position = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)  # (N, P), as `generate` numbers them
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True, logits_to_keep=1)
        keys = [F.pad(layer.keys, (0, 0, 0, new_tokens)) for layer in out.past_key_values.layers]  # L x (N, Hkv, S, D)
        values = [F.pad(layer.values, (0, 0, 0, new_tokens)) for layer in out.past_key_values.layers]
        valid = F.pad(mask.bool(), (0, new_tokens))  # (N, S)
        vocab_size = out.logits.shape[-1]
        allowed = rule.allowed_ids(vocab_size, ids.device)
        span = None if rule.span is None else torch.arange(*rule.span, device=ids.device)  # (K,)
        step_allowed = allowed if span is None else allowed[span]  # what a step masks: (V,) or (K,)
        if keep is None:
            keep = (ids.new_zeros(n, new_tokens), torch.zeros(n, new_tokens, dtype=torch.bool, device=ids.device))
        rows = n // 2 if rule.guidance is not None else n

        def uniform() -> torch.Tensor | None:
            return None if rule.greedy else torch.rand((rows, vocab_size), generator=generator, device=ids.device)

        # the rotary angles of every position a written token can take (as the model computes them)
        last = position[:, -1]  # (N,)
        positions = torch.arange(int(last.max()) + new_tokens + 1, device=ids.device)[None]  # (1, P')
        cos, sin = self.model.model.rotary_emb(self.model.model.embed_tokens.weight, positions)  # (1, P', D) each
        token = torch.where(keep[1][:, 0], keep[0][:, 0], rule.pick(out.logits[:, -1].float(), allowed, uniform()))  # (N,)
        stop = -1 if stop_id is None else stop_id  # -1: no id, so no row stops
        written, stopped = [token], token == stop  # (N,) the rows that have written stop_id
        cell = self._trailing_image_run(ids)  # (N,) the face-grid cell of the first token written
        step, (layers, head) = self._step_fn(rule), self._weights(span)
        for i in range(1, new_tokens):
            if bool(stopped.all()):
                break
            at = last + i  # (N,) the position of the token going in
            slot = torch.tensor([width + i - 1], device=ids.device)
            fed = token
            token = step(layers, head, fed, cell, cos[0, at], sin[0, at], slot, width + i, valid, keys, values,
                         step_allowed, span, uniform(), keep[0][:, i], keep[1][:, i])
            cell = torch.where(self._is_image(fed), cell + 1, torch.zeros_like(cell))  # the cell of `token`
            written.append(token)
            stopped |= token == stop
        return torch.stack(written, 1)

    def _is_image(self, ids: torch.Tensor) -> torch.Tensor:
        """Same shape as ids: True for the tokens that get a face-grid cell (none without face_grid)."""
        embed = self.model.model.embed_tokens
        if not isinstance(embed, FaceGridEmbedding):
            return torch.zeros_like(ids, dtype=torch.bool)
        return embed.is_image(ids)

    def _trailing_image_run(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, P) -> (N,) image tokens at the end of each row: the cell the next image token fills."""
        not_image = ~self._is_image(ids)  # (N, P)
        last = torch.where(not_image.any(1), ids.shape[1] - 1 - not_image.flip(1).long().argmax(1), -1)
        return ids.shape[1] - 1 - last
