"""RestorationLoss (weights, SSIM term, VGG weights resolution) and metrics against numpy references."""

from __future__ import annotations

import math
from pathlib import Path

import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from manurestore.errors import ManurestoreError
from manurestore.training import losses as losses_mod
from manurestore.training.losses import (
    VGG16_FILENAME,
    RestorationLoss,
    VGGFeatures,
    default_vgg_path,
    find_vgg_weights,
)
from manurestore.metrics import PSNR_CAP_DB, mse, psnr, ssim

torch.set_num_threads(min(2, torch.get_num_threads()))

# torchvision's vgg16 `features` convolutions: Sequential index -> (out, in) channels.
TORCHVISION_VGG16_CONVS = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256), 14: (256, 256),
    17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512), 26: (512, 512), 28: (512, 512),
}


def fake_vgg16_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with torchvision's vgg16 `features` keys and shapes (the classifier is left out)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, (cout, cin) in TORCHVISION_VGG16_CONVS.items():
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * math.sqrt(2 / (9 * cin))
        state[f"features.{index}.bias"] = torch.randn(cout, generator=g) * 0.01
    return state


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / VGG16_FILENAME
    torch.save(fake_vgg16_state_dict(), path)
    return path


@pytest.fixture()
def no_torch_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def _pair(shape=(2, 3, 32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(*shape, generator=g)
    pred = (target + 0.1 * torch.randn(*shape, generator=g)).requires_grad_(True)
    return pred, target


# ---------------------------------------------------------------------------------------------- loss weights


def test_l1_only_total_is_l1(no_torch_home):
    pred, target = _pair()
    loss = RestorationLoss(l1_weight=1.0, perceptual_weight=0.0, ssim_weight=0.0)
    total, parts = loss(pred, target)
    assert torch.equal(total, F.l1_loss(pred, target))
    assert float(parts["total"]) == float(total.detach())
    assert float(parts["ssim"]) == 0.0 and float(parts["perceptual"]) == 0.0
    total.backward()
    assert pred.grad is not None


def test_ssim_term_is_one_minus_ssim_not_half():
    pred, target = _pair()
    loss = RestorationLoss(l1_weight=0.0, perceptual_weight=0.0, ssim_weight=1.0)
    total, parts = loss(pred, target)
    expected = 1.0 - kornia.metrics.ssim(pred, target, 11, eps=0.0).mean()
    torch.testing.assert_close(total, expected, rtol=0, atol=1e-6)
    # kornia's ssim_loss is (1 - SSIM) / 2.
    torch.testing.assert_close(total, 2 * kornia.losses.ssim_loss(pred, target, 11), rtol=0, atol=1e-5)
    assert float(parts["ssim"]) == pytest.approx(float(total.detach()))
    # Same number as the metric (mean over the batch) for images already in [0, 1].
    inside = pred.detach().clamp(0, 1)
    total_inside, _ = loss(inside, target)
    assert float(total_inside) == pytest.approx(1.0 - float(ssim(inside, target).mean()), abs=1e-6)


def test_weights_scale_their_terms(vgg_file):
    pred, target = _pair()
    loss = RestorationLoss(l1_weight=0.7, perceptual_weight=0.3, ssim_weight=0.2, vgg_weights=vgg_file)
    total, parts = loss(pred, target)
    assert loss.perceptual_weight == 0.3 and loss.perceptual_disabled is None
    assert all(float(parts[k]) > 0 for k in ("l1", "perceptual", "ssim"))
    expected = 0.7 * parts["l1"] + 0.3 * parts["perceptual"] + 0.2 * parts["ssim"]
    torch.testing.assert_close(total.detach(), expected, rtol=1e-6, atol=0)
    assert not any(v.requires_grad for v in parts.values())


def test_loss_is_float32_for_bf16_inputs_and_under_autocast(no_torch_home):
    pred, target = _pair()
    loss = RestorationLoss(perceptual_weight=0.0)
    reference, _ = loss(pred, target)
    total, _ = loss(pred.detach().bfloat16(), target.bfloat16())
    assert total.dtype == torch.float32
    assert float(total) == pytest.approx(float(reference.detach()), rel=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = loss(pred, target)
    assert total.dtype == torch.float32
    torch.testing.assert_close(total, reference)


def test_negative_weight_is_refused(no_torch_home):
    with pytest.raises(ManurestoreError, match="ssim"):
        RestorationLoss(ssim_weight=-1.0)


# --------------------------------------------------------------------------------------------- VGG weights


def test_vgg_layout_matches_torchvision_keys():
    full = losses_mod._vgg16_features()
    convs = {i: (m.out_channels, m.in_channels) for i, m in enumerate(full) if isinstance(m, torch.nn.Conv2d)}
    assert convs == TORCHVISION_VGG16_CONVS
    assert len(full) == 31  # torchvision's vgg16().features has 31 modules
    assert isinstance(full[15], torch.nn.ReLU) and isinstance(full[16], torch.nn.MaxPool2d)
    truncated = VGGFeatures()
    assert len(truncated.features) == 16  # up to relu3_3


def test_fake_torchvision_file_loads(vgg_file):
    assert find_vgg_weights(vgg_file) == vgg_file
    assert find_vgg_weights(str(vgg_file)) == vgg_file
    loss = RestorationLoss(vgg_weights=vgg_file)
    state = torch.load(vgg_file, weights_only=True)
    assert torch.equal(loss.vgg.features[14].weight, state["features.14.weight"])
    assert not loss.vgg.training
    loss.train()
    assert not loss.vgg.training  # frozen feature extractor stays in eval mode
    assert all(not p.requires_grad for p in loss.vgg.parameters())


def test_perceptual_gradients_reach_the_prediction_only(vgg_file):
    loss = RestorationLoss(l1_weight=0.0, perceptual_weight=1.0, ssim_weight=0.0, vgg_weights=vgg_file)
    pred, target = _pair(shape=(1, 3, 32, 32))
    same, _ = loss(target, target)
    assert float(same) == 0.0
    total, parts = loss(pred, target)
    assert float(total.detach()) > 0
    torch.testing.assert_close(total.detach(), parts["perceptual"])
    total.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.vgg.parameters())


def test_wrong_shaped_file_errors_naming_file_and_key(tmp_path):
    state = fake_vgg16_state_dict()
    state["features.7.weight"] = torch.zeros(128, 32, 3, 3)
    path = tmp_path / "bad_vgg.pth"
    torch.save(state, path)
    with pytest.raises(ManurestoreError, match=r"bad_vgg\.pth.*features\.7\.weight.*\[128, 32, 3, 3\]"):
        find_vgg_weights(path)
    with pytest.raises(ManurestoreError, match="bad_vgg.pth"):
        RestorationLoss(vgg_weights=path)


def test_other_bad_files_error(tmp_path):
    missing = tmp_path / "missing.pth"
    with pytest.raises(ManurestoreError, match="missing.pth.*does not exist"):
        find_vgg_weights(missing)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(ManurestoreError, match="notes.pth.*not a loadable"):
        find_vgg_weights(text)
    resnet_like = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, resnet_like)
    with pytest.raises(ManurestoreError, match="resnet.pth.*features.0.weight"):
        find_vgg_weights(resnet_like)


def test_default_location_under_torch_home(no_torch_home, vgg_file):
    expected = no_torch_home / "hub" / "checkpoints" / VGG16_FILENAME
    assert default_vgg_path() == expected
    assert find_vgg_weights(None) is None
    expected.parent.mkdir(parents=True)
    expected.write_bytes(vgg_file.read_bytes())
    assert find_vgg_weights(None) == expected
    loss = RestorationLoss()
    assert loss.vgg is not None and loss.perceptual_weight == pytest.approx(0.1)


def test_missing_weights_warn_once_and_zero_the_weight(no_torch_home):
    messages: list[str] = []
    loss = RestorationLoss(perceptual_weight=0.5, warn=messages.append)
    assert loss.perceptual_weight == 0.0 and loss.vgg is None
    assert len(messages) == 1
    assert messages[0].startswith("no VGG16 weights found (")
    assert messages[0].endswith("perceptual loss weight set to 0")
    assert str(no_torch_home) in messages[0]
    assert loss.perceptual_disabled == messages[0]
    pred, target = _pair()
    for _ in range(2):
        total, parts = loss(pred, target)
    assert len(messages) == 1 and float(parts["perceptual"]) == 0.0
    # Default reporter: one warnings.warn.
    with pytest.warns(UserWarning, match="no VGG16 weights found"):
        RestorationLoss()
    # Weight 0 never looks for weights.
    silent: list[str] = []
    RestorationLoss(perceptual_weight=0.0, warn=silent.append)
    assert silent == []


# ------------------------------------------------------------------------------------------------- metrics


def _np_gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - size // 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _np_filter(img: np.ndarray, k: np.ndarray, mode: str) -> np.ndarray:
    """Separable 'same' filtering of an (H, W) image; mode 'reflect' = torch reflect, 'edge' = replicate."""
    r = len(k) // 2
    p = np.pad(img, r, mode=mode)
    h, w = img.shape
    rows = sum(k[i] * p[i : i + h, :] for i in range(len(k)))
    return sum(k[j] * rows[:, j : j + w] for j in range(len(k)))


def np_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image mean SSIM of (B, C, H, W) float64 arrays in [0, 1], borders included.

    Window 11, sigma 1.5, c1 = 0.01², c2 = 0.03²; padding follows kornia's padding='same' (numpy 'reflect',
    the mirror without repeating the edge, equal to torch 'reflect'), or 'edge' when a side is 5 px or less.
    """
    k = _np_gaussian()
    c1, c2 = 0.01**2, 0.03**2
    mode = "reflect" if min(a.shape[-2:]) > 5 else "edge"
    out = np.zeros(a.shape[0])
    for n in range(a.shape[0]):
        maps = []
        for c in range(a.shape[1]):
            x, y = a[n, c], b[n, c]
            mx, my = _np_filter(x, k, mode), _np_filter(y, k, mode)
            sxx = _np_filter(x * x, k, mode) - mx * mx
            syy = _np_filter(y * y, k, mode) - my * my
            sxy = _np_filter(x * y, k, mode) - mx * my
            maps.append(((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2)))
        out[n] = np.mean(maps)
    return out


def _images(shape, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    # Correlated second image with values pushed slightly outside [0, 1] to exercise the clamp.
    b = a + 0.15 * rng.standard_normal(shape)
    return torch.from_numpy(a).float(), torch.from_numpy(b).float()


@pytest.mark.parametrize("shape", [(2, 3, 24, 31), (1, 3, 64, 40), (2, 3, 4, 9)])
def test_ssim_matches_numpy(shape):
    a, b = _images(shape)
    expected = np_ssim(a.double().clamp(0, 1).numpy(), b.double().clamp(0, 1).numpy())
    got = ssim(a, b)
    assert got.shape == (shape[0],) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-4)
    assert torch.allclose(ssim(a, a), torch.ones(shape[0]), atol=1e-5)


def test_psnr_and_mse_match_numpy():
    a, b = _images((3, 3, 20, 17), seed=1)
    an, bn = a.double().clamp(0, 1).numpy(), b.double().clamp(0, 1).numpy()
    expected_mse = ((an - bn) ** 2).reshape(3, -1).mean(axis=1)
    expected_psnr = 10 * np.log10(1.0 / expected_mse)
    np.testing.assert_allclose(mse(a, b).numpy(), expected_mse, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(psnr(a, b).numpy(), expected_psnr, rtol=1e-5, atol=1e-5)
    assert psnr(a, b).shape == (3,)


def test_psnr_caps_identical_images_and_clamps_inputs():
    a = torch.rand(2, 3, 8, 8)
    assert torch.equal(psnr(a, a), torch.full((2,), PSNR_CAP_DB))
    assert torch.equal(psnr(a + 2.0, torch.ones_like(a)), torch.full((2,), PSNR_CAP_DB))  # both clamp to 1
    assert torch.equal(mse(torch.full_like(a, -1.0), torch.zeros_like(a)), torch.zeros(2))


def test_set_psnr_is_the_sets_mean_error_not_a_mean_of_capped_psnrs():
    from manurestore import metrics

    clean = torch.rand(4, 3, 16, 16)
    degraded = clean.clone()
    degraded[1:] = (degraded[1:] + 0.1).clamp(0, 1)  # one image left undamaged, as a preset may leave it
    per_image = metrics.psnr(degraded, clean)
    assert per_image[0] == metrics.PSNR_CAP_DB
    mean_error = float(metrics.mse(degraded, clean).mean())
    whole = metrics.set_psnr(mean_error)
    assert whole == pytest.approx(10 * math.log10(1 / mean_error))
    # The untouched image lowers the set's error by a quarter (+1.25 dB), where it would lift a
    # mean of PSNRs by about 20 dB.
    assert whole <= float(per_image[1:].max()) + 10 * math.log10(4 / 3) + 1e-6
    assert float(per_image.mean()) > whole + 15
    assert metrics.set_psnr(0.0) == metrics.PSNR_CAP_DB
