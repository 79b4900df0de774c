"""RestorerViT: a ViT encoder with a progressive convolutional decoder that predicts a residual correction.

Layout (patch size p = 2**L, e.g. p=16 -> L=4):

    x (B,3,H,W) in [0,1] --pad to a multiple of p (reflect, replicate when too small)--> xp
    conv stem:  level 0 (stride 1, c0) -> level 1 (stride 2, c1) -> ... -> level L-1 (stride p/2)
    encoder:    p×p patch embedding -> + position embedding (resampled bicubically to the token grid)
                -> `depth` pre-norm transformer blocks (SDPA attention)
                -> features after the blocks listed in `skip_depths`, each layer-normed, concatenated,
                   projected to `decoder_dim` and mixed by a 3×3 conv on the token grid
    decoder:    for level L-1 .. 0: 1×1 conv + PixelShuffle(2) up one octave, + conv-stem skip of that level,
                3×3 conv + GELU
    head:       3×3 conv to 3 channels, initialised to zero
    output:     x + correction cropped back to H×W (a fresh model is the identity)
    page:       optional `page_context` branch (page_context.py), run once per page by the tiler, not
                by `forward`: the tiles only repair local damage

The output is not clamped: losses see raw values. `restore()` is the inference helper that clamps to [0,1].
Grayscale callers repeat their single channel to 3 channels before calling the model.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from manurestore.models.page_context import PageContext

__all__ = ["RestorerConfig", "RestorerViT", "pad_to_multiple"]


@dataclass(frozen=True)
class RestorerConfig:
    """Everything needed to rebuild a RestorerViT; every field is a plain JSON value (tuples become lists)."""

    name: str = "custom"
    embed_dim: int = 192
    depth: int = 4
    num_heads: int = 3
    mlp_ratio: float = 4.0
    patch_size: int = 16
    # Reference size of the position-embedding grid: img_size // patch_size tokens per side.
    img_size: int = 256
    in_chans: int = 3
    # Conv-stem / decoder widths at strides 1, 2, 4, ..., patch_size/2 (log2(patch_size) entries).
    conv_channels: tuple[int, ...] = (16, 24, 32, 48)
    # Width of the fused token features that start the decoder.
    decoder_dim: int = 96
    # 1-based block indices whose outputs feed the decoder; the last must be `depth`.
    skip_depths: tuple[int, ...] = (2, 4)
    qkv_bias: bool = True
    grad_checkpointing: bool = False
    # A PageContext branch that decides colour and illumination once per page (see page_context.py).
    page_context: bool = False

    def __post_init__(self) -> None:
        # Accept lists (from JSON) and store tuples so the config stays hashable and comparable.
        object.__setattr__(self, "conv_channels", tuple(int(c) for c in self.conv_channels))
        object.__setattr__(self, "skip_depths", tuple(int(d) for d in self.skip_depths))
        p = self.patch_size
        if p < 2 or p & (p - 1):
            raise ValueError(f"patch_size must be a power of two >= 2, got {p}")
        levels = int(math.log2(p))
        if len(self.conv_channels) != levels:
            raise ValueError(
                f"conv_channels needs {levels} widths for patch_size {p} (strides 1..{p // 2}), "
                f"got {len(self.conv_channels)}"
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if not self.skip_depths or self.skip_depths[-1] != self.depth:
            raise ValueError(f"skip_depths must end with depth={self.depth}, got {list(self.skip_depths)}")
        if any(not 1 <= d <= self.depth for d in self.skip_depths) or list(self.skip_depths) != sorted(
            set(self.skip_depths)
        ):
            raise ValueError(f"skip_depths must be increasing block indices in 1..{self.depth}")
        if self.img_size % p:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {p}")
        if self.in_chans < 1:
            raise ValueError("in_chans must be >= 1")

    @property
    def mlp_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["conv_channels"] = list(self.conv_channels)
        out["skip_depths"] = list(self.skip_depths)
        return out


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of (B,C,H,W) so H and W are multiples of `multiple`; return it and the original (H, W).

    Reflect padding where the dimension allows it (pad < size), replicate where it is too small (e.g. 1×1, or
    5 rows padded to 16). Each dimension is padded separately so a 300×17 input reflects along both.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph:
        mode = "reflect" if ph < h else "replicate"
        x = F.pad(x, (0, 0, 0, ph), mode=mode)
    if pw:
        mode = "reflect" if pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, 0), mode=mode)
    return x, (h, w)


def resample_pos_embed(pos: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """(1, gh*gw, D) position embeddings -> (1, nh*nw, D) by bicubic interpolation of the 2-D grid."""
    if tuple(grid) == tuple(new_grid):
        return pos
    d = pos.shape[-1]
    img = pos.reshape(1, grid[0], grid[1], d).permute(0, 3, 1, 2)
    img = F.interpolate(img.float(), size=new_grid, mode="bicubic", align_corners=False).to(pos.dtype)
    return img.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], d)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ConvAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GELU())


class Upsample(nn.Module):
    """×2 upsampling: 1×1 conv to 4·cout channels, PixelShuffle(2).

    ICNR initialisation (the four sub-pixel kernels start equal) makes it nearest-neighbour upsampling of a
    learned projection at init, so it starts free of the 2-px checkerboard a random PixelShuffle conv gives.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 1)
        self.shuffle = nn.PixelShuffle(2)
        with torch.no_grad():
            base = torch.empty(cout, cin, 1, 1)
            nn.init.kaiming_uniform_(base, a=math.sqrt(5))
            self.conv.weight.copy_(base.repeat_interleave(4, dim=0))
            bias = torch.empty(cout).uniform_(-1 / math.sqrt(cin), 1 / math.sqrt(cin))
            self.conv.bias.copy_(bias.repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class RestorerViT(nn.Module):
    """(B,3,H,W) in [0,1] -> (B,3,H,W) restored, unclamped; any H×W (padded inside, cropped back)."""

    def __init__(self, config: RestorerConfig | None = None, **kwargs) -> None:
        super().__init__()
        if config is None:
            config = RestorerConfig(**kwargs)
        elif kwargs:
            config = dataclasses.replace(config, **kwargs)
        self.config = config
        c = config
        d = c.embed_dim
        self.patch_size = c.patch_size
        self.grad_checkpointing = c.grad_checkpointing
        chans = c.conv_channels

        # Convolutional stem: full resolution, then stride-2 stages down to patch_size/2.
        stem = [ConvAct(c.in_chans, chans[0])]
        for i in range(1, len(chans)):
            stem.append(ConvAct(chans[i - 1], chans[i], stride=2))
        self.stem = nn.ModuleList(stem)

        # ViT encoder.
        self.patch_embed = nn.Conv2d(c.in_chans, d, c.patch_size, stride=c.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, c.grid_size**2, d))
        self.blocks = nn.ModuleList(Block(d, c.num_heads, c.mlp_dim, c.qkv_bias) for _ in range(c.depth))
        self.skip_norms = nn.ModuleList(nn.LayerNorm(d, eps=1e-6) for _ in c.skip_depths)
        self.fuse = nn.Linear(d * len(c.skip_depths), c.decoder_dim)
        self.token_conv = ConvAct(c.decoder_dim, c.decoder_dim)

        # Decoder: one ×2 stage per conv-stem level, coarsest first.
        ups, convs = [], []
        prev = c.decoder_dim
        for ch in reversed(chans):
            ups.append(Upsample(prev, ch))
            convs.append(ConvAct(ch, ch))
            prev = ch
        self.ups = nn.ModuleList(ups)
        self.dec_convs = nn.ModuleList(convs)
        self.head = nn.Conv2d(chans[0], c.in_chans, 3, padding=1)
        # Page-level decisions live apart from the tiles: the tiler runs it once per page.
        self.page_context = PageContext() if c.page_context else None

        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        w = self.patch_embed.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=math.sqrt(1.0 / w[0].numel()))
        nn.init.zeros_(self.patch_embed.bias)
        # Zero head: the correction starts at exactly 0, so output == input.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute transformer blocks in the backward pass (less memory, ~30% more compute)."""
        self.grad_checkpointing = bool(enabled)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised padded image -> fused token features (B, decoder_dim, gh, gw)."""
        tokens = self.patch_embed(x)
        b, d, gh, gw = tokens.shape
        tokens = tokens.flatten(2).transpose(1, 2)
        g = self.config.grid_size
        tokens = tokens + resample_pos_embed(self.pos_embed, (g, g), (gh, gw)).to(tokens.dtype)
        taps = []
        wanted = self.config.skip_depths
        use_ckpt = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks, start=1):
            if use_ckpt:
                tokens = checkpoint(block, tokens, use_reentrant=False)
            else:
                tokens = block(tokens)
            if i in wanted:
                taps.append(self.skip_norms[len(taps)](tokens))
        fused = self.fuse(torch.cat(taps, dim=-1))
        fused = fused.transpose(1, 2).reshape(b, -1, gh, gw)
        return self.token_conv(fused.contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor, page_view: torch.Tensor | None = None):
        """The restored tiles; with `page_view` (training the page-context branch in the same
        pass, so data-parallel training sees every parameter used) also the page's colour field."""
        restored = self._restore_tiles(x)
        if page_view is None:
            return restored
        if self.page_context is None:
            raise ValueError("this model has no page-context branch")
        return restored, self.page_context(page_view)

    def _restore_tiles(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(
                f"RestorerViT expects (B, {self.config.in_chans}, H, W), got {tuple(x.shape)}; "
                "repeat a grayscale channel to 3 channels first"
            )
        xp, (h, w) = pad_to_multiple(x, self.patch_size)
        # Channels-last: oneDNN (CPU) and cuDNN run these narrow convolutions several times faster.
        xn = ((xp - 0.5) / 0.5).contiguous(memory_format=torch.channels_last)

        skips = []
        feat = xn
        for stage in self.stem:
            feat = stage(feat)
            skips.append(feat)

        y = self._encode(xn)
        for up, conv, skip in zip(self.ups, self.dec_convs, reversed(skips)):
            y = conv(up(y) + skip)
        correction = self.head(y)[..., :h, :w]
        return (x + correction).contiguous()

    @torch.inference_mode()
    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: forward without autograd, clamped to [0, 1]. Call .eval() first by convention
        (the model has no dropout or batch-norm, so train and eval modes compute the same thing)."""
        return self.forward(x).clamp_(0.0, 1.0)
