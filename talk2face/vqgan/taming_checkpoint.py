"""Reading official taming-transformers checkpoints without taming's Lightning code.

Two kinds of `.ckpt` are accepted, both `{"state_dict": {...}, ...}` as Lightning saves them:
- a VQGAN (`taming.models.vqgan.VQModel`): keys `encoder.*`, `decoder.*`, `quantize.*`,
  `quant_conv.*`, `post_quant_conv.*`, plus `loss.*` (discriminator, LPIPS) which we drop;
- a Net2NetTransformer (`taming.models.cond_transformer`): the VQGAN sits under
  `first_stage_model.*` (this is how Talk2Face reused taming's FFHQ f16 VQGAN).

The yaml next to a checkpoint has `target:` import strings; only the `params` are read, nothing
is ever imported from them. Checkpoints are opened with `torch.load(weights_only=True)`, so no
code in the file runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import yaml

from talk2face.errors import UserError
from talk2face.vqgan.config import VQGANConfig

FIRST_STAGE_PREFIX = "first_stage_model."
VQGAN_PARTS = ("encoder.", "decoder.", "quantize.", "quant_conv.", "post_quant_conv.")


class _Inert:
    """Base of stand-ins for classes named in a pickle: accepts anything, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _inert_class(qualified: str) -> type:
    """A do-nothing stand-in carrying the name of a class pickled in a checkpoint."""
    module, _, name = qualified.rpartition(".")
    return type(name, (_Inert,), {"__module__": module})


_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")


def _reason(err: Exception) -> str:
    """The informative part of a torch.load error, on one line (torch wraps it in generic advice)."""
    text = " ".join(str(err).split())
    text = text.split("WeightsUnpickler error:", 1)[-1]
    return re.split(r" Please use | Check the documentation", text)[0].strip() or type(err).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """`torch.load(path, weights_only=True)` of a Lightning checkpoint.

    Lightning also pickles its callbacks' states keyed by their classes; the weights-only
    unpickler refuses those. Each global it refuses is replaced by an inert placeholder class and
    the load is retried (still no code from the file runs) because only `state_dict` is used;
    whatever it still refuses is named in the error.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    stand_ins: list[tuple[type, str]] = []
    while True:
        try:
            with torch.serialization.safe_globals(stand_ins):
                ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
            break
        except Exception as err:  # torch raises UnpicklingError/RuntimeError/ValueError/... for a bad file
            refused = _REFUSED_GLOBAL.search(str(err))
            if refused and refused[1] not in {name for _, name in stand_ins}:
                stand_ins.append((_inert_class(refused[1]), refused[1]))
                continue
            tried = f", standing in for {', '.join(n for _, n in stand_ins)}" if stand_ins else ""
            raise UserError(f"{path}: not a readable PyTorch checkpoint (torch.load weights_only=True{tried}): "
                            f"{_reason(err)}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise UserError(f"{path}: not a taming checkpoint (no 'state_dict' mapping at the top level)")
    return ckpt


def vqgan_state(state: dict[str, Any], where: str) -> dict[str, torch.Tensor]:
    """The VQGAN's own tensors: strip `first_stage_model.`, drop `loss.*` and other stages."""
    if any(k.startswith(FIRST_STAGE_PREFIX) for k in state):
        state = {k[len(FIRST_STAGE_PREFIX):]: v for k, v in state.items() if k.startswith(FIRST_STAGE_PREFIX)}
    kept = {k: v for k, v in state.items() if not k.startswith("loss.")}
    if not any(k.startswith("encoder.") for k in kept):
        sample = ", ".join(sorted(state)[:5])
        raise UserError(
            f"{where}: not a taming VQGAN or Net2NetTransformer checkpoint (no encoder.* or "
            f"first_stage_model.encoder.* keys; first keys: {sample})"
        )
    return kept


def _get(node: Any, dotted: str, where: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"{where}: missing key '{dotted}'")
        node = node[part]
    return node


def config_from_yaml(path: str | Path) -> VQGANConfig:
    """VQGANConfig from a taming project yaml (a VQModel's, or a Net2NetTransformer's)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"taming config not found: {path}") from None
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None
    params = _get(doc, "model.params", str(path))
    target = str(_get(doc, "model.target", str(path)))
    if "first_stage_config" in params:  # Net2NetTransformer: the VQGAN is its first stage
        target = str(_get(params, "first_stage_config.target", f"{path}: model.params"))
        params = _get(params, "first_stage_config.params", f"{path}: model.params")
    if not target.endswith(".VQModel"):
        raise UserError(f"{path}: only taming VQModel first stages are supported, got target {target!r}")
    if params.get("remap") is not None:
        raise UserError(f"{path}: codebook remapping ('remap') is not supported")
    dd = _get(params, "ddconfig", str(path))
    try:
        if dd.get("double_z", False) or dd.get("in_channels", 3) != 3 or dd.get("out_ch", 3) != 3:
            raise UserError(f"{path}: only RGB VQGANs with double_z: false are supported")
        return VQGANConfig(
            preset="", image_size=int(dd["resolution"]), ch=int(dd["ch"]), ch_mult=[int(m) for m in dd["ch_mult"]],
            num_res_blocks=int(dd["num_res_blocks"]), attn_resolutions=[int(r) for r in dd["attn_resolutions"]],
            z_channels=int(dd["z_channels"]), dropout=float(dd.get("dropout", 0.0)),
            n_codes=int(_get(params, "n_embed", str(path))), embed_dim=int(_get(params, "embed_dim", str(path))),
            beta=0.25, legacy=True, l2_codes=False,  # what taming's VQModel hard-codes
        )
    except KeyError as err:
        raise UserError(f"{path}: ddconfig is missing {err}") from None


def config_from_state(state: dict[str, torch.Tensor], image_size: int = 256) -> VQGANConfig:
    """Read the architecture off the weights' shapes (when the yaml is lost).

    Attention resolutions are in pixels of the feature map, which the weights only know through
    `image_size`; taming's face models are 256x256.
    """
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.down\.(\d+)\.", k))})
    ch_mult, attn = [], []
    for level in levels:
        blocks = {int(m.group(1)) for k in state if (m := re.match(rf"encoder\.down\.{level}\.block\.(\d+)\.", k))}
        ch_mult.append(state[f"encoder.down.{level}.block.0.conv1.weight"].shape[0] // ch)
        if f"encoder.down.{level}.attn.0.q.weight" in state:
            attn.append(image_size // 2**level)
    n_codes, embed_dim = state["quantize.embedding.weight"].shape
    return VQGANConfig(
        preset="", image_size=image_size, ch=ch, ch_mult=ch_mult, num_res_blocks=len(blocks), attn_resolutions=attn,
        z_channels=state["quant_conv.weight"].shape[1], n_codes=n_codes, embed_dim=embed_dim,
        beta=0.25, legacy=True, l2_codes=False,
    )


def load_taming(
    ckpt_path: str | Path, yaml_path: str | Path | None = None, image_size: int = 256
) -> tuple[VQGANConfig, dict[str, torch.Tensor]]:
    """Config and VQGAN state dict of an official taming checkpoint.

    Args:
        ckpt_path: a VQGAN or Net2NetTransformer `.ckpt`.
        yaml_path: its project yaml, or None to infer the architecture from the weights.
        image_size: the input side, used only without a yaml.
    Returns:
        (config, state dict with taming's key names, `loss.*` dropped).
    """
    state = vqgan_state(read_checkpoint(ckpt_path)["state_dict"], str(ckpt_path))
    if yaml_path is not None:
        return config_from_yaml(yaml_path), state
    try:
        return config_from_state(state, image_size), state
    except KeyError as err:
        raise UserError(f"{ckpt_path}: cannot infer the VQGAN architecture, key {err} missing; pass its yaml") from None
