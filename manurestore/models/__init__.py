"""Restoration models: the RestorerViT architecture and its registry of named sizes."""

from manurestore.models.registry import (
    MODELS,
    build_model,
    build_model_from_config,
    count_flops,
    count_parameters,
    describe_models,
    list_models,
    model_config,
    register_model,
)
from manurestore.models.vit import RestorerConfig, RestorerViT, pad_to_multiple

__all__ = [
    "MODELS",
    "RestorerConfig",
    "RestorerViT",
    "build_model",
    "build_model_from_config",
    "count_flops",
    "count_parameters",
    "describe_models",
    "list_models",
    "model_config",
    "pad_to_multiple",
    "register_model",
]
