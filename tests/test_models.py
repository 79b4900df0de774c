"""RestorerViT and its registry: shapes, identity at init, position-embedding resampling, config round trip."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from manurestore.errors import ManurestoreError, UsageError
from manurestore.models import (
    RestorerViT,
    build_model,
    build_model_from_config,
    count_flops,
    describe_models,
    list_models,
    model_config,
    pad_to_multiple,
)
from manurestore.models.vit import resample_pos_embed

torch.set_num_threads(min(2, torch.get_num_threads()))

SMALL_SIZES = ["vit-tiny", "vit-small"]
# Tiny, odd, non-multiples of 16 and one multiple; (1, 1) and (5, 7) need replicate padding.
INPUT_SIZES = [(1, 1), (5, 7), (16, 16), (37, 50), (300, 17), (64, 48)]


def _perturb_head(model: RestorerViT, std: float = 0.05) -> RestorerViT:
    """A fresh model's head is zero (identity); give it weights so gradients reach the encoder."""
    torch.manual_seed(1)
    with torch.no_grad():
        model.head.weight.normal_(0, std)
        model.head.bias.normal_(0, std)
    return model


@pytest.fixture(scope="module")
def tiny() -> RestorerViT:
    torch.manual_seed(0)
    return build_model("vit-tiny")


@pytest.fixture(scope="module")
def changing(tiny) -> RestorerViT:
    """`tiny` with a random head: the same network, but its output is no longer its input."""
    return _perturb_head(copy.deepcopy(tiny)).eval()


def assert_changes(y: torch.Tensor, x: torch.Tensor) -> None:
    """The model really altered the page, so an equality that follows is not true by construction."""
    assert (y - x).abs().max() > 1e-3


def test_registry_lists_the_three_sizes():
    assert {"vit-tiny", "vit-small", "vit-base"} <= set(list_models())


@pytest.mark.parametrize("name", SMALL_SIZES)
def test_output_shape_for_every_input_size(name):
    torch.manual_seed(0)
    model = _perturb_head(build_model(name)).eval()
    for h, w in INPUT_SIZES:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            y = model(x)
        assert_changes(y, x)
        assert y.shape == x.shape, (name, h, w)
        assert y.dtype == torch.float32
        assert torch.isfinite(y).all()


def test_vit_base_is_vit_b16_scale_and_runs_once():
    torch.manual_seed(0)
    model = build_model("vit-base")
    cfg = model.config
    assert (cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_dim, cfg.patch_size) == (768, 12, 12, 3072, 16)
    encoder = sum(
        p.numel() for n, p in model.named_parameters() if n.startswith(("patch_embed", "pos_embed", "blocks"))
    )
    assert 85e6 < encoder < 87e6
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        y = model(x)
    assert torch.equal(y, x)  # fresh model is the identity


@settings(max_examples=10, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 70))
def test_any_input_size_round_trips(changing, h, w):
    x = torch.rand(1, 3, h, w)
    padded, _ = pad_to_multiple(x, changing.patch_size)
    with torch.no_grad():
        y = changing(x)
        y_padded = changing(padded)
    assert_changes(y, x)
    assert y.shape == x.shape
    # The padding is cropped away exactly: the same as restoring the padded page and cutting it back.
    assert torch.equal(y, y_padded[..., :h, :w])


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 37, 50), (1, 3, 1, 1)])
def test_fresh_model_is_exactly_the_identity(tiny, changing, shape):
    x = torch.rand(*shape)
    with torch.no_grad():
        fresh, trained = tiny(x), changing(x)
    assert torch.equal(fresh, x)
    assert_changes(trained, x)  # the same network with a non-zero head is not the identity


def test_restore_clamps_and_forward_does_not():
    torch.manual_seed(0)
    model = build_model("vit-tiny")
    with torch.no_grad():
        model.head.bias.fill_(0.5)  # push the correction outside [0, 1]
    x = torch.rand(1, 3, 32, 32)
    raw = model(x)
    assert raw.max() > 1.0
    restored = model.restore(x)
    assert restored.min() >= 0.0 and restored.max() <= 1.0
    assert torch.equal(restored, raw.detach().clamp(0, 1))


def test_rejects_wrong_channel_count(tiny):
    with pytest.raises(ValueError, match="3 channels"):
        tiny(torch.rand(1, 1, 32, 32))


def test_pad_to_multiple_reflects_or_replicates():
    x = torch.arange(20.0).view(1, 1, 4, 5)
    padded, (h, w) = pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 8, 8) and (h, w) == (4, 5)
    assert torch.equal(padded[..., :4, :5], x)
    # 4 rows padded by 4: too few to reflect -> replicate; 5 columns padded by 3: reflect.
    assert torch.equal(padded[0, 0, 4:, :5], x[0, 0, 3:4, :].expand(4, 5))
    assert torch.equal(padded[0, 0, :4, 5:], x[0, 0, :, [3, 2, 1]])
    same, _ = pad_to_multiple(x, 1)
    assert same is x


def test_position_embeddings_resample_to_other_grids():
    torch.manual_seed(0)
    # Reference grid 2×2 (img_size 32) used at 64×48 and 16×80: 4×3 and 1×5 token grids.
    model = _perturb_head(build_model("vit-tiny", img_size=32))
    assert model.pos_embed.shape == (1, 4, 192)
    for h, w in [(64, 48), (16, 80), (32, 32)]:
        model.zero_grad()
        x = torch.rand(1, 3, h, w, requires_grad=True)
        y = model(x)
        assert y.shape == x.shape and torch.isfinite(y).all()
        y.square().mean().backward()
        grad = model.pos_embed.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
        assert torch.isfinite(x.grad).all()


def test_resample_pos_embed_keeps_constants_and_identity():
    pos = torch.randn(1, 16, 8)
    assert resample_pos_embed(pos, (4, 4), (4, 4)) is pos
    const = torch.ones(1, 9, 8) * 0.3
    out = resample_pos_embed(const, (3, 3), (5, 7))
    assert out.shape == (1, 35, 8)
    torch.testing.assert_close(out, torch.full_like(out, 0.3))


def test_config_round_trip_loads_strict():
    torch.manual_seed(0)
    model = _perturb_head(build_model("vit-tiny", img_size=64))
    config = model_config(model)
    config = json.loads(json.dumps(config))  # plain JSON values only
    assert config["name"] == "vit-tiny" and config["img_size"] == 64
    rebuilt = build_model_from_config(config)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.rand(1, 3, 40, 24)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_build_errors_are_manurestore_errors():
    with pytest.raises(UsageError, match="vit-tiny"):
        build_model("vit-huge")
    with pytest.raises(UsageError, match="no_such_field"):
        build_model("vit-tiny", no_such_field=1)
    with pytest.raises(UsageError, match="patch_size"):
        build_model("vit-tiny", patch_size=12)
    config = model_config(build_model("vit-tiny"))
    with pytest.raises(ManurestoreError, match="unknown key"):
        build_model_from_config({**config, "mystery": 3})
    with pytest.raises(ManurestoreError, match="invalid"):
        build_model_from_config({**config, "conv_channels": [16, 24]})


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = _perturb_head(build_model("vit-tiny"))
    x = torch.rand(1, 3, 32, 32)

    def grads(enabled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        model.zero_grad()
        model.set_grad_checkpointing(enabled)
        y = model(x)
        y.square().mean().backward()
        return y.detach(), model.blocks[0].attn.qkv.weight.grad.clone()

    y0, g0 = grads(False)
    y1, g1 = grads(True)
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(g1, g0)
    assert model_config(model)["grad_checkpointing"] is True


def test_bf16_autocast_forward_runs(tiny):
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = tiny(x)
    assert y.shape == x.shape and y.dtype == torch.float32


def test_describe_models_rows():
    rows = {row["name"]: row for row in describe_models(256)}
    assert set(rows) == set(list_models())
    for name, row in rows.items():
        assert row["params"] > 0 and row["gflops"] > 0
        assert {"embed_dim", "depth", "heads", "patch_size"} <= set(row)
        json.dumps(row)
    assert rows["vit-tiny"]["gflops"] < rows["vit-small"]["gflops"] < rows["vit-base"]["gflops"]
    assert (rows["vit-base"]["embed_dim"], rows["vit-base"]["depth"], rows["vit-base"]["heads"]) == (768, 12, 12)


def test_flop_count_includes_attention():
    model = build_model("vit-tiny")
    cfg = model.config
    tokens = (256 // cfg.patch_size) ** 2
    # The token MLP + qkv + proj matmuls alone (2 FLOPs per multiply-add) ...
    linear = cfg.depth * 2 * tokens * (4 * cfg.embed_dim**2 + 2 * cfg.embed_dim * cfg.mlp_dim)
    attention = cfg.depth * 2 * 2 * tokens * tokens * cfg.embed_dim
    total = count_flops(model, 256)
    assert total > linear + attention
    # ... and a larger image costs more.
    assert count_flops(model, 512) > 3 * total


def test_random_model_has_no_16px_patch_structure():
    """With random decoder and head weights, the correction must not jump at the 16-px token borders."""
    torch.manual_seed(0)
    model = _perturb_head(build_model("vit-tiny")).eval()
    size = 128
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    x = (0.5 + 0.3 * torch.sin(6 * xx + 3 * yy)).expand(1, 3, size, size)
    x = (x + 0.05 * torch.randn(1, 3, size, size)).clamp(0, 1)
    with torch.no_grad():
        correction = (model(x) - x)[0].mean(0)
    # Horizontal steps across token borders (columns 15|16, 31|32, ...) versus all other steps.
    steps = (correction[:, 1:] - correction[:, :-1]).abs().mean(0)
    border = steps[15::16].mean()
    inside = torch.cat([steps[j::16] for j in range(16) if j != 15]).mean()
    assert border < 1.3 * inside
    # No spectral line at the patch frequency (period 16 px) along rows.
    spectrum = torch.fft.rfft(correction - correction.mean(), dim=1).abs().mean(0)
    k = size // 16
    neighbours = torch.cat([spectrum[k - 3 : k], spectrum[k + 1 : k + 4]])
    assert spectrum[k] < 2 * neighbours.median()
