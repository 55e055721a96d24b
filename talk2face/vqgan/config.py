"""A VQGAN's architecture (taming's `ddconfig` and quantizer settings) and the named presets."""

from __future__ import annotations

from dataclasses import dataclass, field

from talk2face.errors import UserError


@dataclass
class VQGANConfig:
    """Architecture of a VQGAN; the `dd*` fields are taming's `ddconfig`."""

    preset: str = ""  # name in VQGAN_PRESETS this config came from ("" for a custom one)
    image_size: int = 64  # input side in pixels (taming's `resolution`)
    ch: int = 64  # base channels; a multiple of 32 (taming's GroupNorm uses 32 groups)
    ch_mult: list[int] = field(default_factory=lambda: [1, 1, 2, 2])  # one entry per level
    num_res_blocks: int = 1  # ResnetBlocks per encoder level (the decoder has one more)
    attn_resolutions: list[int] = field(default_factory=list)  # feature-map sides with attention
    z_channels: int = 64  # encoder output channels before quant_conv
    dropout: float = 0.0
    n_codes: int = 512  # codebook size K (taming's `n_embed`)
    embed_dim: int = 64  # code vector size (taming's `embed_dim`)
    beta: float = 0.25  # commitment weight (but see `legacy`)
    # QUIRK (taming): VectorQuantizer2 with legacy=True applies beta to the *codebook* term and
    # weight 1 to the *commitment* term, the reverse of the VQ-VAE paper. Official checkpoints were
    # trained that way, so it stays the default for them; our own training sets legacy=False.
    legacy: bool = True
    # l2-normalised codes (ViT-VQGAN / "Vector-quantized Image Modeling with Improved VQGAN",
    # Yu et al. 2021): latents and code vectors live on the unit sphere, so nearest-neighbour
    # search is cosine similarity and far fewer codes die. Off for taming checkpoints.
    l2_codes: bool = False
    # Space-to-depth before taming's Encoder (and depth-to-space after its Decoder): the encoder
    # sees (3 * p * p, H / p, W / p) patches, as ViT-VQGAN (Yu et al. 2021) embeds 8x8 patches.
    # Convolutions at full resolution dominate the cost of a small VQGAN; at p = 4 they are gone.
    patch_size: int = 1

    @property
    def grid_size(self) -> tuple[int, int]:
        side = self.image_size // self.patch_size // 2 ** (len(self.ch_mult) - 1)
        return (side, side)

    def ddconfig(self) -> dict:
        """The keyword arguments of taming's Encoder/Decoder."""
        return dict(
            double_z=False, z_channels=self.z_channels, resolution=self.image_size // self.patch_size,
            in_channels=3 * self.patch_size**2, out_ch=3 * self.patch_size**2, ch=self.ch,
            ch_mult=list(self.ch_mult), num_res_blocks=self.num_res_blocks,
            attn_resolutions=list(self.attn_resolutions), dropout=self.dropout,
        )

    def validate(self, where: str = "VQGAN config") -> None:
        """Raise UserError for a config taming's modules cannot build."""
        channels = [self.ch * m for m in self.ch_mult] + [self.ch]
        if any(c % 32 for c in channels):
            raise UserError(f"{where}: ch * ch_mult must be multiples of 32 (GroupNorm(32)), got {channels}")
        factor = self.patch_size * 2 ** (len(self.ch_mult) - 1)
        if self.patch_size < 1 or self.image_size % factor:
            raise UserError(
                f"{where}: image_size {self.image_size} not divisible by patch_size {self.patch_size} "
                f"* 2^{len(self.ch_mult) - 1}"
            )
        if not 1 <= self.n_codes <= 65536:
            raise UserError(f"{where}: n_codes must be in [1, 65536] (codes are stored as uint16)")


VQGAN_PRESETS: dict[str, VQGANConfig] = {
    # SynFace 64x64 -> 8x8 = 64 codes, sized for a CPU: 4x4 patches in, so the convolutions run
    # at 16x16 (64 channels) and 8x8 (128) instead of at full resolution (README, the tokenizer)
    "synface-64": VQGANConfig(
        preset="synface-64", image_size=64, patch_size=4, ch=64, ch_mult=[1, 2], num_res_blocks=1,
        attn_resolutions=[], z_channels=64, n_codes=512, embed_dim=16, legacy=False, l2_codes=True,
    ),
    # The same layout twice as wide and deep, for a GPU (experiments/vqgan-synface-gpu.yaml)
    "synface-64-wide": VQGANConfig(
        preset="synface-64-wide", image_size=64, patch_size=4, ch=128, ch_mult=[1, 2], num_res_blocks=2,
        attn_resolutions=[], z_channels=64, n_codes=512, embed_dim=16, legacy=False, l2_codes=True,
    ),
    # taming's FFHQ / FacesHQ f16 config (configs/faceshq_vqgan.yaml): 256x256 -> 16x16, 1024
    # codes. Talk2Face tokenised faces with this model; load its weights with VQGAN.from_taming.
    "taming-f16-1024": VQGANConfig(
        preset="taming-f16-1024", image_size=256, ch=128, ch_mult=[1, 1, 2, 2, 4], num_res_blocks=2,
        attn_resolutions=[16], z_channels=256, n_codes=1024, embed_dim=256, legacy=True, l2_codes=False,
    ),
}
