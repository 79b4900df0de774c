"""The public tensor functions behind every built-in op, and the helpers plugin ops build on.

One import gives a plugin author everything (`from manurestore.degradations import functional`):

- the ops, each a pure function of a (B, C, H, W) float batch in [0, 1] and its per-image values,
  (B,) tensors (one number also works: every image gets it): `gaussian_noise`, `gaussian_blur`,
  `contrast`, `salt_pepper`, `yellowing`, `stains`. Those that need random numbers take the
  batch's `ImageRandom` (`rand`): image i's result then depends on its own pixels and seed only;
- colour: `rgb_to_channels`, `luminance`, `paper_colour`, `ink_density`, `multiply_blend`, `LUMA`;
- smooth fields: `grid_size`, `grid_centres`, `upsample`, `smooth_noise`, `smoothstep`,
  `FIELD_GRID`, `wide_float`;
- blurs: `gaussian_blur_sigma` (any sigma per image), `opencv_sigma`; and `per_image`;
- the built-ins' colours: `FULL_TINT` (yellowing), `STAIN_BROWN` (stains);
- the real-scan damage ops, defined in their own modules and exported here: `dark_spots`,
  `tide_stains`, `illumination`, `faded_ink`, `jpeg`, `show_through`.

Every op function returns a result of x's shape, dtype and device and takes `out=`: with
`out=None` the result is a new tensor and `x` is untouched; with `out` (x's shape, dtype and
device; `x` itself is fine) the result is written there and `out` returned, which saves a
batch-sized allocation. They do not clamp: the pipeline clamps once at the end.

>>> from manurestore.degradations.random import ImageRandom
>>> x = torch.rand(2, 3, 32, 32)
>>> rand = ImageRandom([11, 12])
>>> y = contrast(x, alpha=torch.tensor([0.7, 0.9]), beta=0.1)
>>> y = gaussian_noise(y, torch.tensor([0.02, 0.05]), rand, out=y)  # in place
>>> y = gaussian_blur(y, torch.tensor([3, 5]))
>>> tuple(y.shape), y.dtype
((2, 3, 32, 32), torch.float32)
"""

from __future__ import annotations

import torch
from torch import Tensor

from manurestore import native
from manurestore.degradations import fused
from manurestore.degradations.base import per_image
from manurestore.degradations.colour import LUMA, ink_density, luminance, multiply_blend, paper_colour, rgb_to_channels
from manurestore.degradations.dark_spots import dark_spots
from manurestore.degradations.faded_ink import faded_ink
from manurestore.degradations.fields import FIELD_GRID, grid_centres, grid_size, smooth_noise, smoothstep, upsample, wide_float
from manurestore.degradations.filters import blur_kernel_sizes, gaussian_blur_sigma, opencv_sigma
from manurestore.degradations.illumination import illumination
from manurestore.degradations.jpeg import jpeg
from manurestore.degradations.random import ImageRandom, _normal_table, hashed_bits
from manurestore.degradations.show_through import show_through
from manurestore.degradations.staining import STAIN_BROWN, stain_
from manurestore.degradations.tide_stains import tide_stains
from manurestore.devices import to_device
from manurestore.memory import new_batch

__all__ = [
    "gaussian_noise", "gaussian_blur", "contrast", "salt_pepper", "yellowing", "stains",
    "dark_spots", "tide_stains", "illumination", "faded_ink", "jpeg", "show_through",
    "rgb_to_channels", "luminance", "paper_colour", "ink_density", "multiply_blend", "LUMA",
    "grid_size", "grid_centres", "upsample", "smooth_noise", "smoothstep", "FIELD_GRID", "wide_float",
    "gaussian_blur_sigma", "opencv_sigma", "per_image", "FULL_TINT", "STAIN_BROWN",
]

# At full strength yellowing scales each RGB channel by these factors (the seed's recipe).
FULL_TINT = (1.0, 0.95, 0.8)


def gaussian_noise(x: Tensor, sigma: Tensor | float, rand: ImageRandom, *, out: Tensor | None = None) -> Tensor:
    """x + sigma·N(0, 1), independent per pixel and channel; image i with its own sigma[i].

    The normals are `rand.normal(C, H, W)`, streamed piece by piece (`rand.normal_spans`) and
    added as they come, so the noise is never materialised whole; on the CPU one native loop
    (`native`) hashes, looks up and adds them in a single pass, with the same normals.

    >>> from manurestore.degradations.random import ImageRandom
    >>> x = torch.full((2, 1, 64, 64), 0.5)
    >>> noisy = gaussian_noise(x, torch.tensor([0.0, 0.1]), ImageRandom([1, 2]))
    >>> float(noisy[0].std()), round(float(noisy[1].std()), 1)
    (0.0, 0.1)
    """
    target = _output(x, out)
    batch = x.shape[0]
    if batch == 0 or x[0].numel() == 0:
        return _deliver(target.copy_(x), out)
    source = x.reshape(batch, -1)  # a view for contiguous x; `target` is contiguous
    flat = target.view(batch, -1)
    scale = per_image(_each_image(sigma, x), x).view(batch, 1)
    keys = rand.call_keys((source.shape[1] + 1) // 2) if fused.active(x.device) else None
    if keys is not None:
        table = _normal_table(x.device)
        return _deliver(flat.copy_(fused.run("gaussian_noise", noisy, source, keys, scale, table)).view_as(target), out)
    host_keys = rand.host_call_keys() if native.active(x) else None
    if host_keys is not None:  # one native pass on the CPU (`native`): the same normals
        native.add_noise(source.detach(), flat, host_keys, scale.view(-1), _normal_table(x.device))
        return _deliver(target, out)
    for (start, stop), (start2, stop2), values in rand.normal_spans(source.shape[1]):
        for begin, end, row in ((start, stop, 0), (start2, stop2, 1)):
            if end > begin:
                noise = values[:, row, : end - begin].to(x.dtype)
                torch.addcmul(source[:, begin:end], noise, scale, out=flat[:, begin:end])
    return _deliver(target, out)


def noisy(source: Tensor, keys: Tensor, scale: Tensor, table: Tensor) -> Tensor:
    """(B, N) `source` + scale·normals, the normals drawn with the (B, 1) call `keys` exactly as
    `ImageRandom.normal(N)` draws them: the eager `gaussian_noise` as one expression, for
    `fused` to compile into a kernel."""
    width = source.shape[1]
    half = (width + 1) // 2
    bits = hashed_bits(keys, half)
    high = table[((bits >> 16) & 0xFFFF).long()].to(source.dtype)  # the first half's normals
    low = table[(bits & 0xFFFF).long()].to(source.dtype)  # the second half's
    first = torch.addcmul(source[:, :half], high, scale)
    second = torch.addcmul(source[:, half:], low[:, : width - half], scale)
    return torch.cat([first, second], dim=1)


def gaussian_blur(x: Tensor, kernel_size: Tensor | int, *, out: Tensor | None = None) -> Tensor:
    """Gaussian blur, image i with the odd kernel size kernel_size[i] and OpenCV's sigma for it
    (`opencv_sigma`: 0.3·((k − 1)/2 − 1) + 0.8), as a slightly defocused camera blurs.

    Separable, with reflected borders (OpenCV's BORDER_REFLECT_101), or replicated ones where
    the image is not larger than half the kernel. On the CPU the taps are summed a few planes
    at a time where the images lie; on an accelerator `kornia.filters.gaussian_blur2d` runs once
    per kernel size. Both give the same values up to float rounding.

    >>> x = torch.zeros(2, 1, 7, 7)
    >>> x[:, :, 3, 3] = 1.0
    >>> blurred = gaussian_blur(x, torch.tensor([3, 5]))
    >>> [round(float(v), 4) for v in blurred[:, 0, 3, 3]], round(float(blurred.sum()), 4)
    ([0.2725, 0.1366], 2.0)
    """
    target = _output(x, out)
    blur_kernel_sizes(x.contiguous(), _each_image(kernel_size, x), target)
    return _deliver(target, out)


def contrast(x: Tensor, alpha: Tensor | float, beta: Tensor | float, *, out: Tensor | None = None) -> Tensor:
    """alpha·x + beta per image: alpha < 1 flattens the contrast, beta > 0 lifts the blacks
    (faded ink and paper).

    >>> x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)
    >>> contrast(x, alpha=torch.tensor([0.5]), beta=torch.tensor([0.25])).flatten().tolist()
    [0.25, 0.75]
    """
    target = _output(x, out)
    torch.mul(x, per_image(_each_image(alpha, x), x), out=target).add_(per_image(_each_image(beta, x), x))
    return _deliver(target, out)


def salt_pepper(x: Tensor, amount: Tensor | float, rand: ImageRandom, *, out: Tensor | None = None) -> Tensor:
    """A fraction amount[i] of image i's pixels (all channels together) set to black or white.

    Only the hits are drawn, so the cost follows the number of specks, not of pixels: each image
    draws n = round(−ln(1 − amount)·H·W) positions, uniform and independent, so the expected
    fraction of distinct pixels hit, 1 − (1 − 1/(H·W))ⁿ ≈ 1 − e^(−n/(H·W)), is `amount` even
    where two draws land on one pixel. Half are salt, half pepper; a pixel hit by both is salt.
    `amount` is clamped to [0, 0.5].

    >>> from manurestore.degradations.random import ImageRandom
    >>> x = torch.full((1, 3, 100, 100), 0.5)
    >>> specked = salt_pepper(x, torch.tensor([0.1]), ImageRandom([4]))
    >>> hit = (specked != 0.5).all(dim=1)
    >>> round(float(hit.float().mean()), 2), sorted(specked[:, 0][hit].unique().tolist())
    (0.1, [0.0, 1.0])
    """
    target = _output(x, out)
    if target is not x:
        target.copy_(x)
    batch, channels, height, width = x.shape
    pixels = height * width
    # Hits per image, worked out on the CPU in float64 so that every device gets the same counts.
    amounts = _each_image(amount, x).detach().to("cpu", torch.float64).clamp(0.0, 0.5)
    counts = torch.round(-torch.log1p(-amounts) * pixels).to(torch.int64)
    slots = int(counts.max()) if batch and pixels else 0
    # Draw the same two calls whatever the batch holds, so the stream stays aligned.
    where = rand.below(max(pixels, 1), max(slots, 0))  # (B, slots) pixel indices
    salt = rand.bernoulli(0.5, max(slots, 0))  # (B, slots) True = white
    if slots == 0:
        return _deliver(target, out)
    used = torch.arange(slots, device=x.device).view(1, -1) < to_device(counts.numpy(), x.device).view(-1, 1)
    if x.device.type == "cpu":
        _speck_hits(target, where, salt, used)
    else:
        _speck_by_marks(target, where, salt, used)
    return _deliver(target, out)


def _speck_hits(target: Tensor, where: Tensor, salt: Tensor, used: Tensor) -> None:
    """Set the used hits of contiguous `target`, pepper first so that salt wins a tie: only the
    hits are touched (selecting them reads back from the device, which costs nothing on the CPU)."""
    batch, channels = target.shape[:2]
    planes = target.view(batch, channels, -1).transpose(1, 2)  # (B, H·W, C) view of the result
    image = torch.arange(batch, device=target.device).view(-1, 1).expand_as(where)
    for value, chosen in ((0.0, used & ~salt), (1.0, used & salt)):
        planes[image[chosen], where[chosen]] = value


def _speck_by_marks(target: Tensor, where: Tensor, salt: Tensor, used: Tensor) -> None:
    """`_speck_hits` without reading anything back: each pixel takes the largest mark its hits
    leave (0 none, 1 pepper, 2 salt, so salt wins a tie), then one pass sets the marked pixels."""
    batch, channels = target.shape[:2]
    codes = torch.where(used, salt.to(torch.int32) + 1, 0)
    marks = torch.zeros(batch, target[0, 0].numel(), dtype=torch.int32, device=target.device)
    marks = marks.scatter_reduce_(1, where, codes, reduce="amax").view(batch, 1, -1)
    target.view(batch, channels, -1).masked_fill_(marks == 1, 0.0).masked_fill_(marks == 2, 1.0)


def yellowing(x: Tensor, strength: Tensor | float, *, out: Tensor | None = None) -> Tensor:
    """Ageing tint: each channel scaled by 1 − strength·(1 − FULL_TINT), so blue and green fade
    towards yellow; a grayscale page is scaled by the tint's luma.

    >>> x = torch.full((1, 3, 1, 1), 0.5)
    >>> yellowing(x, torch.tensor([1.0])).flatten().tolist()
    [0.5, 0.4749999940395355, 0.4000000059604645]
    """
    tint = rgb_to_channels(torch.tensor(FULL_TINT, device=x.device, dtype=torch.float32), x.shape[1])
    scale = 1.0 - _each_image(strength, x).view(-1, 1) * (1.0 - tint.view(1, -1))
    scale = scale.to(x.dtype).view(x.shape[0], x.shape[1], 1, 1)
    target = _output(x, out)
    torch.mul(x, scale, out=target)
    return _deliver(target, out)


def stains(
    x: Tensor,
    *,
    count: Tensor,
    centre_y: Tensor,
    centre_x: Tensor,
    radius: Tensor,
    intensity: Tensor,
    softness: Tensor,
    aspect: Tensor,
    angle: Tensor,
    wobble: Tensor,
    phase: Tensor,
    tint: Tensor,
    out: Tensor | None = None,
) -> Tensor:
    """Soft, irregular brown blotches that darken the page: count[i] of them on image i.

    Each blob k of image i has its own values, (B, K) tensors with K ≥ max(count) slots:
    `centre_y`, `centre_x` (fractions of the height and width), `radius` (a fraction of the
    shorter side), `intensity` (darkening at the centre, 0–1), `softness` (edge fade, a fraction
    of the radius), `aspect` (stretch along `angle`, in radians); `wobble` and `phase` are
    (B, K, 3), the outline's harmonics at 2, 3 and 5 turns. `tint` (B, 3) shifts each image's
    brown (STAIN_BROWN). Where stains overlap, their opacities combine as 1 − Π(1 − opacity).
    The mask is computed on a coarse grid and upsampled, so its cost hardly grows with the page.

    >>> one = lambda value: torch.full((1, 1), value)
    >>> page = torch.ones(1, 3, 64, 64)
    >>> stained = stains(page, count=torch.tensor([1]), centre_y=one(0.5), centre_x=one(0.5),
    ...     radius=one(0.3), intensity=one(0.8), softness=one(0.3), aspect=one(1.0), angle=one(0.0),
    ...     wobble=torch.zeros(1, 1, 3), phase=torch.zeros(1, 1, 3), tint=torch.zeros(1, 3))
    >>> bool(stained[0, 2, 32, 32] < stained[0, 0, 32, 32] < 1.0), float(stained[0, 0, 0, 0])
    (True, 1.0)
    """
    blobs = {
        "count": count, "centre_y": centre_y, "centre_x": centre_x, "radius": radius,
        "intensity": intensity, "softness": softness, "aspect": aspect, "angle": angle,
        "wobble": wobble, "phase": phase, "tint": tint,
    }
    target = _output(x, out)
    if target is not x:
        target.copy_(x)
    stain_(target, blobs)
    return _deliver(target, out)


def _each_image(values: Tensor | float, x: Tensor) -> Tensor:
    """Per-image values as a (B,) tensor: a (B,) tensor as it is, one number for every image."""
    if isinstance(values, Tensor) and values.ndim == 1:
        return values
    return torch.as_tensor(values, device=x.device).expand(x.shape[0])


def _output(x: Tensor, out: Tensor | None) -> Tensor:
    """Where a function writes its result: `out` when it is contiguous, else a new batch (copied
    into `out` at the end by `_deliver`)."""
    if out is None:
        return new_batch(x.shape, x.dtype, x.device)
    if out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
        raise ValueError(
            f"out must match x: got {tuple(out.shape)} {out.dtype} on {out.device}, "
            f"x is {tuple(x.shape)} {x.dtype} on {x.device}"
        )
    return out if out.is_contiguous() else new_batch(x.shape, x.dtype, x.device)


def _deliver(result: Tensor, out: Tensor | None) -> Tensor:
    """The result, written into `out` when `out` is given and the result is elsewhere."""
    return result if out is None or result is out else out.copy_(result)
