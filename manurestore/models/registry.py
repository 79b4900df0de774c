"""Named model sizes, building models from names or checkpoint metadata, and the `describe_models` table."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, model_validator

from manurestore.errors import ManurestoreError, UsageError
from manurestore.models.vit import RestorerConfig, RestorerViT
from manurestore.validation import number, one_of, short_text, validation_problem, whole_number

__all__ = [
    "MODELS",
    "register_model",
    "list_models",
    "build_model",
    "model_config",
    "build_model_from_config",
    "ModelConfigSchema",
    "MAX_PARAMETERS",
    "MIN_CROP",
    "MAX_CROP",
    "count_parameters",
    "count_flops",
    "describe_models",
]

# name -> zero-argument factory returning that size's RestorerConfig
MODELS: dict[str, Callable[[], RestorerConfig]] = {}

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(RestorerConfig)}


def register_model(name: str) -> Callable[[Callable[[], RestorerConfig]], Callable[[], RestorerConfig]]:
    """Decorator: register a zero-argument function returning a RestorerConfig under `name`."""

    def decorator(factory: Callable[[], RestorerConfig]) -> Callable[[], RestorerConfig]:
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = factory
        return factory

    return decorator


@register_model("vit-tiny")
def vit_tiny() -> RestorerConfig:
    """192-d, 4 blocks, 3 heads, 16×16 patches: trains on a laptop CPU, restores at ~0.35 s/MP on 2 cores."""
    return RestorerConfig(
        name="vit-tiny", embed_dim=192, depth=4, num_heads=3, patch_size=16,
        conv_channels=(16, 24, 32, 48), decoder_dim=96, skip_depths=(2, 4),
    )


@register_model("vit-small")
def vit_small() -> RestorerConfig:
    """384-d, 6 blocks, 6 heads, 16×16 patches."""
    return RestorerConfig(
        name="vit-small", embed_dim=384, depth=6, num_heads=6, patch_size=16,
        conv_channels=(24, 32, 48, 64), decoder_dim=128, skip_depths=(2, 4, 6),
    )


@register_model("vit-base")
def vit_base() -> RestorerConfig:
    """ViT-B/16 encoder (768-d, 12 blocks, 12 heads, MLP 3072, ~86M parameters) with the conv decoder."""
    return RestorerConfig(
        name="vit-base", embed_dim=768, depth=12, num_heads=12, patch_size=16,
        conv_channels=(32, 48, 64, 96), decoder_dim=256, skip_depths=(3, 6, 9, 12),
    )


def list_models() -> list[str]:
    """Registered model names, smallest first (registration order)."""
    return list(MODELS)


def _config_for(name: str, overrides: dict[str, Any]) -> RestorerConfig:
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    unknown = sorted(set(overrides) - _CONFIG_FIELDS)
    if unknown:
        raise UsageError(
            f"model {name!r}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_CONFIG_FIELDS))}"
        )
    try:
        return dataclasses.replace(MODELS[name](), **overrides)
    except (TypeError, ValueError) as error:
        raise UsageError(f"model {name!r}: {error}") from None


def build_model(name: str, **overrides: Any) -> RestorerViT:
    """A fresh RestorerViT of a registered size; `overrides` replace config fields (e.g. img_size=128)."""
    return RestorerViT(_config_for(name, overrides))


def model_config(model: RestorerViT) -> dict:
    """The model's config as plain JSON values (str/int/float/bool/list), for checkpoint metadata."""
    config = model.config.to_dict()
    config["grad_checkpointing"] = bool(model.grad_checkpointing)
    return config


# A model file's metadata decides how much memory its model takes, so every size is bounded before
# anything is built: vit-base has 86M parameters, the largest ViTs in use under 1G.
MAX_PARAMETERS = 1_000_000_000
PATCH_SIZES = (2, 4, 8, 16, 32, 64)
MAX_TOKENS_PER_SIDE = 256  # img_size / patch_size: the position-embedding grid
# Training crops, and so the tiles a model restores with: the tiler needs 16 pixels (`--tile`'s
# minimum), and a model file may not ask for tiles above 4096.
MIN_CROP = 16
MAX_CROP = 4096
_DEFAULT = RestorerConfig()


class ModelConfigSchema(BaseModel):
    """A model's architecture as a model file records it, bounded so that nothing huge is built.

    Missing fields take RestorerConfig's defaults; the cross-field rules (heads divide the width,
    one conv width per octave) stay in RestorerConfig, and the whole model is counted on the
    meta device, allocating nothing, before it may be built.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: short_text(100) = _DEFAULT.name
    embed_dim: whole_number(1, 4096) = _DEFAULT.embed_dim
    depth: whole_number(1, 64) = _DEFAULT.depth
    num_heads: whole_number(1, 64) = _DEFAULT.num_heads
    mlp_ratio: number(0.125, 16.0) = _DEFAULT.mlp_ratio
    patch_size: one_of(PATCH_SIZES) = _DEFAULT.patch_size
    img_size: whole_number(2, 4096) = _DEFAULT.img_size
    in_chans: one_of((3,)) = _DEFAULT.in_chans  # the restorer feeds RGB
    conv_channels: list[whole_number(1, 1024)] = list(_DEFAULT.conv_channels)
    decoder_dim: whole_number(1, 4096) = _DEFAULT.decoder_dim
    skip_depths: list[whole_number(1, 64)] = list(_DEFAULT.skip_depths)
    qkv_bias: StrictBool = _DEFAULT.qkv_bias
    grad_checkpointing: StrictBool = _DEFAULT.grad_checkpointing
    page_context: StrictBool = _DEFAULT.page_context

    @model_validator(mode="after")
    def _buildable(self) -> "ModelConfigSchema":
        tokens = self.img_size // self.patch_size
        if not 1 <= tokens <= MAX_TOKENS_PER_SIDE:
            raise ValueError(f"img_size / patch_size must be from 1 to {MAX_TOKENS_PER_SIDE}, got {self.img_size} / {self.patch_size}")
        config = self.restorer_config()
        with torch.device("meta"):
            parameters = count_parameters(RestorerViT(config))
        if parameters > MAX_PARAMETERS:
            raise ValueError(f"{parameters:,} parameters are more than the {MAX_PARAMETERS:,} allowed")
        return self

    def restorer_config(self) -> RestorerConfig:
        """The RestorerConfig these values describe (its own checks raise ValueError)."""
        return RestorerConfig(**self.model_dump())


def build_model_from_config(config: dict) -> RestorerViT:
    """Rebuild the architecture recorded by `model_config` (weights are loaded separately)."""
    if not isinstance(config, dict):
        raise ManurestoreError(f"model config must be a mapping, got {type(config).__name__}")
    try:
        return RestorerViT(ModelConfigSchema.model_validate(config).restorer_config())
    except ValidationError as error:
        raise ManurestoreError(validation_problem(error, "model config")) from None


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: RestorerViT | RestorerConfig, size: int | tuple[int, int] = 256) -> int:
    """FLOPs of one forward pass on one (1, C, H, W) image, a multiply-add counted as 2 (FlopCounterMode's rule).

    The architecture is rebuilt on the meta device, so nothing is computed or allocated. On meta, SDPA
    decomposes into the two attention matmuls that the counter sees; the CPU's fused attention kernel would
    not be counted at all.
    """
    from torch.utils.flop_counter import FlopCounterMode

    config = model.config if isinstance(model, RestorerViT) else model
    h, w = (size, size) if isinstance(size, int) else size
    with torch.device("meta"):
        meta_model = RestorerViT(config)
        x = torch.zeros(1, config.in_chans, h, w)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta_model(x)
    return int(counter.get_total_flops())


def describe_models(size: int = 256) -> list[dict]:
    """One row per registered model: name, params, GFLOPs for one size×size image, embed dim, depth, heads, patch.

    Models are built on the meta device, so this allocates no weights and takes well under a second.
    """
    rows = []
    for name in list_models():
        with torch.device("meta"):
            model = build_model(name)
        encoder = sum(
            p.numel() for n, p in model.named_parameters() if n.startswith(("patch_embed", "pos_embed", "blocks"))
        )
        cfg = model.config
        rows.append({
            "name": name,
            "params": count_parameters(model),
            "encoder_params": encoder,
            "gflops": round(count_flops(model, size) / 1e9, 2),
            "embed_dim": cfg.embed_dim,
            "depth": cfg.depth,
            "heads": cfg.num_heads,
            "mlp_dim": cfg.mlp_dim,
            "patch_size": cfg.patch_size,
        })
    return rows
