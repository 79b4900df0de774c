"""The restoration loss: weighted L1 + VGG16 perceptual + (1 - SSIM), computed in float32.

total = l1_weight · L1 + perceptual_weight · perceptual + ssim_weight · (1 − SSIM)

- L1: mean absolute error over all pixels and channels.
- SSIM: the mean of the SSIM map of `manurestore.metrics.ssim_map` (Gaussian window 11, sigma 1.5,
  data range 1, reflect borders). The term is exactly 1 − mean SSIM, not kornia's ssim_loss, which is
  (1 − SSIM) / 2.
- Perceptual: ImageNet-normalised images through VGG16 `features` truncated after relu3_3; the L1 distance
  of the activations at relu1_2, relu2_2 and relu3_3, averaged over the three layers. relu3_3 is the deepest
  layer used, so the 10 layers after it (conv4_x, conv5_x) would cost compute and memory for nothing; these
  three shallow layers describe edges and stroke texture at 1, 1/2 and 1/4 resolution, which is what matters
  for thin aksharas, while relu4_3 and deeper encode ImageNet object semantics.

The VGG weights are never downloaded. `find_vgg_weights` looks for a torchvision-format `vgg16-397923af.pth`;
without one the perceptual weight is set to 0 and one warning is reported.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from manurestore.errors import ManurestoreError
from manurestore.metrics import ssim_map

__all__ = [
    "VGG16_FILENAME",
    "VGG16_LAYOUT",
    "VGGFeatures",
    "RestorationLoss",
    "default_vgg_path",
    "find_vgg_weights",
    "load_vgg_state_dict",
]

VGG16_FILENAME = "vgg16-397923af.pth"

# torchvision's vgg16 `features`: an int is a 3×3 conv to that many channels (followed by a ReLU), "M" a 2×2
# max-pool. Indices in the Sequential follow torchvision exactly, so its state-dict keys load unchanged.
VGG16_LAYOUT: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

# Sequential indices of the ReLUs whose outputs are compared.
PERCEPTUAL_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15}
_LAST_INDEX = max(PERCEPTUAL_LAYERS.values())

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg16_features(up_to: int | None = None) -> nn.Sequential:
    """torchvision's vgg16().features layout, optionally truncated after Sequential index `up_to`."""
    layers: list[nn.Module] = []
    cin = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, item, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            cin = item
    if up_to is not None:
        layers = layers[: up_to + 1]
    return nn.Sequential(*layers)


def _expected_shapes(up_to: int = _LAST_INDEX) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for i, layer in enumerate(_vgg16_features(up_to)):
        if isinstance(layer, nn.Conv2d):
            shapes[f"features.{i}.weight"] = tuple(layer.weight.shape)
            shapes[f"features.{i}.bias"] = tuple(layer.bias.shape)
    return shapes


def default_vgg_path() -> Path:
    """$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth, TORCH_HOME defaulting to ~/.cache/torch."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    return Path(torch_home).expanduser() / "hub" / "checkpoints" / VGG16_FILENAME


def load_vgg_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a torchvision-format VGG16 file (weights_only) and return the conv tensors up to relu3_3.

    Raises ManurestoreError naming the file and what is wrong: missing, unreadable, not a state dict,
    missing keys or wrong shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise ManurestoreError(f"{path}: VGG16 weights file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and weights_only errors come in many types
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ManurestoreError(f"{path}: not a loadable torch weights file ({first_line})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ManurestoreError(f"{path}: expected a VGG16 state dict, found a {type(state).__name__}")
    found: dict[str, torch.Tensor] = {}
    for key, shape in _expected_shapes().items():
        value = state.get(key)
        if not isinstance(value, torch.Tensor):
            raise ManurestoreError(
                f"{path}: not a torchvision VGG16 state dict (no tensor {key!r}; expected keys like "
                f"'features.0.weight' as in {VGG16_FILENAME})"
            )
        if tuple(value.shape) != shape:
            raise ManurestoreError(
                f"{path}: {key} has shape {list(value.shape)}, VGG16 needs {list(shape)}; is this a VGG16 file?"
            )
        found[key.removeprefix("features.")] = value.float()
    return found


def find_vgg_weights(explicit: str | os.PathLike | None = None) -> Path | None:
    """Where the VGG16 weights are: `explicit` (must exist and load with VGG16 shapes, else ManurestoreError),
    else the torchvision cache file when present (validated the same way), else None."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        load_vgg_state_dict(path)
        return path
    path = default_vgg_path()
    if path.is_file():
        load_vgg_state_dict(path)
        return path
    return None


class VGGFeatures(nn.Module):
    """Frozen VGG16 features up to relu3_3; returns the relu1_2, relu2_2 and relu3_3 activations.

    Inputs are RGB in [0, 1]; ImageNet mean/std normalisation happens here. The weights never get gradients
    and the module stays in eval mode whatever .train() is called with; gradients do flow to the input.
    """

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.features = _vgg16_features(_LAST_INDEX)
        if state_dict is not None:
            self.features.load_state_dict(state_dict, strict=True)
        self.features.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.taps = sorted(PERCEPTUAL_LAYERS.values())
        super().train(False)

    def train(self, mode: bool = True) -> "VGGFeatures":  # always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class RestorationLoss(nn.Module):
    """total = l1_weight·L1 + perceptual_weight·perceptual + ssim_weight·(1 − SSIM); see the module docstring.

    forward(pred, target) -> (total, parts): `total` is a float32 scalar tensor with gradient; `parts` maps
    "l1", "perceptual", "ssim" (the 1 − SSIM term, unweighted) and "total" to detached float32 0-dim tensors
    (`float(v)` / `.item()` them when logging). Terms whose weight is 0 are skipped and reported as 0.

    vgg_weights: None searches the torchvision cache (see `find_vgg_weights`); a path must be a valid file.
    When perceptual_weight > 0 and no weights are found, the perceptual weight becomes 0,
    `perceptual_disabled` holds the one-line reason and `warn` is called once with it (default: warnings.warn).
    """

    def __init__(
        self,
        l1_weight: float = 1.0,
        perceptual_weight: float = 0.1,
        ssim_weight: float = 0.1,
        vgg_weights: str | os.PathLike | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        for label, value in (("l1", l1_weight), ("perceptual", perceptual_weight), ("ssim", ssim_weight)):
            if value < 0:
                raise ManurestoreError(f"{label} loss weight must be >= 0, got {value}")
        self.l1_weight = float(l1_weight)
        self.perceptual_weight = float(perceptual_weight)
        self.ssim_weight = float(ssim_weight)
        self.perceptual_disabled: str | None = None
        self.vgg_path: Path | None = None
        self.vgg: VGGFeatures | None = None
        if self.perceptual_weight > 0:
            if vgg_weights is not None:
                self.vgg_path = Path(vgg_weights).expanduser()
            else:
                candidate = default_vgg_path()
                self.vgg_path = candidate if candidate.is_file() else None
            if self.vgg_path is None:
                self.perceptual_weight = 0.0
                self.perceptual_disabled = (
                    f"no VGG16 weights found (looked for {default_vgg_path()}; pass --vgg-weights PATH to a "
                    f"torchvision {VGG16_FILENAME}); perceptual loss weight set to 0"
                )
                (warn or (lambda message: warnings.warn(message, stacklevel=3)))(self.perceptual_disabled)
            else:
                self.vgg = VGGFeatures(load_vgg_state_dict(self.vgg_path))

    def perceptual(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over relu1_2, relu2_2, relu3_3 of the L1 distance between VGG activations."""
        if self.vgg is None:
            raise ManurestoreError("perceptual loss needs VGG16 weights, none were loaded")
        with torch.no_grad():
            target_feats = self.vgg(target)
        pred_feats = self.vgg(pred)
        terms = [F.l1_loss(p, t) for p, t in zip(pred_feats, target_feats)]
        return torch.stack(terms).mean()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred = pred.float()
            target = target.float()
            zero = pred.new_zeros(())
            l1 = F.l1_loss(pred, target) if self.l1_weight else zero
            perceptual = self.perceptual(pred, target) if self.perceptual_weight else zero
            ssim_term = 1.0 - ssim_map(pred, target).mean() if self.ssim_weight else zero
            total = self.l1_weight * l1 + self.perceptual_weight * perceptual + self.ssim_weight * ssim_term
        # Detached 0-dim tensors, not floats: converting would synchronise a GPU every step.
        parts = {
            "l1": l1.detach(),
            "perceptual": perceptual.detach(),
            "ssim": ssim_term.detach(),
            "total": total.detach(),
        }
        return total, parts
