"""The numba loops behind `native` (imported only when an op first needs one: numba takes a
fifth of a second to import). Each works on NumPy views of the tensors, in place."""

from __future__ import annotations

import numba
import numpy as np

_compiled = numba.njit(cache=True, nogil=True)


@_compiled
def add_noise(source, out, keys, scale, table):
    """out = source + scale·normals, row by row (`out` may be `source`).

    The normals are those of `ImageRandom.normal(N)`: hash j of a row (its index times the golden
    ratio plus the row's call key, mixed, xored with the key, mixed) gives column j from its high
    16 bits and column half + j from its low 16 bits, each an index into the normal table.
    """
    width = source.shape[1]
    half = (width + 1) // 2
    golden = np.uint32(0x9E3779B9)
    for row in range(source.shape[0]):
        key, sigma = keys[row], scale[row]
        for j in range(half):
            # `random._mix32` (lowbias32) twice. The indices are unsigned here and in every loop
            # below: numba checks a signed index for wrap-around, which stops a loop vectorising
            # (1.7× slower).
            x = np.uint32(np.uint32(j) * golden + key)
            x ^= x >> np.uint32(16)
            x = np.uint32(x * np.uint32(0x7FEB352D))
            x ^= x >> np.uint32(15)
            x = np.uint32(x * np.uint32(0x846CA68B))
            x ^= x >> np.uint32(16)
            x ^= key
            x ^= x >> np.uint32(16)
            x = np.uint32(x * np.uint32(0x7FEB352D))
            x ^= x >> np.uint32(15)
            x = np.uint32(x * np.uint32(0x846CA68B))
            bits = x ^ (x >> np.uint32(16))
            column, paired = np.uint64(j), np.uint64(half + j)
            out[row, column] = source[row, column] + table[bits >> np.uint32(16)] * sigma
            if paired < width:
                out[row, paired] = source[row, paired] + table[bits & np.uint32(0xFFFF)] * sigma


@_compiled
def blur_across(source, across, weights, columns):
    """The horizontal pass of a separable blur: every (H, W) plane of `source` into `across`.

    `weights` is a tuple (its length fixed when compiled, so the taps unroll and the loop over the
    row vectorises); `columns` maps a padded column to its source."""
    planes, height, width = source.shape
    size = len(weights)
    radius = size // 2
    padded = np.empty(width + 2 * radius, np.float32)
    for plane in range(planes):
        for y in range(height):
            row = source[plane, y]
            for i in range(width + 2 * radius):
                padded[i] = row[np.uint64(columns[i])]
            line = across[plane, y]
            for x in range(width):
                total = weights[radius] * padded[np.uint64(x + radius)]
                for k in range(radius):
                    total += weights[k] * (padded[np.uint64(x + k)] + padded[np.uint64(x + size - 1 - k)])
                line[x] = total


@_compiled
def blur_down(across, out, weights, rows):
    """The vertical pass: every plane of `out` from `across`; `rows` maps a padded row to its
    source. A row is summed a pair of taps at a time, which vectorises where summing all taps per
    pixel does not."""
    planes, height, width = across.shape
    size = len(weights)
    radius = size // 2
    for plane in range(planes):
        for y in range(height):
            line = out[plane, y]
            centre = across[plane, np.uint64(rows[y + radius])]
            for x in range(width):
                line[x] = weights[radius] * centre[x]
            for k in range(radius):
                above = across[plane, np.uint64(rows[y + k])]
                below = across[plane, np.uint64(rows[y + size - 1 - k])]
                weight = weights[k]
                for x in range(width):
                    line[x] += weight * (above[x] + below[x])


@_compiled
def blur_planes(source, out, across, weights, rows, columns):
    """Both passes, a plane at a time through the one-plane scratch `across` (1, H, W), so `out`
    may be `source`."""
    for plane in range(source.shape[0]):
        blur_across(source[plane : plane + 1], across, weights, columns)
        blur_down(across, out[plane : plane + 1], weights, rows)


@_compiled
def darken(x, images, opacity, darkening):
    """x[b] ·= 1 + m·darkening[b] for each image b = images[i], where m is opacity[i] (a coarse
    (h, w) grid) upsampled bilinearly as `F.interpolate` does with align_corners=False: in one
    pass, where torch upsamples, multiplies and adds in three."""
    _, channels, height, width = x.shape
    _, grid_h, grid_w = opacity.shape
    left = np.empty(width, np.int64)
    right = np.empty(width, np.int64)
    weight = np.empty(width, np.float32)
    scale_x = np.float32(grid_w / width)
    for column in range(width):
        source = max(np.float32(0.0), scale_x * (np.float32(column) + np.float32(0.5)) - np.float32(0.5))
        left[column] = min(int(source), grid_w - 1)
        right[column] = min(left[column] + 1, grid_w - 1)
        weight[column] = source - np.float32(left[column])
    across = np.empty(grid_w, np.float32)
    scale_y = np.float32(grid_h / height)
    for i in range(images.shape[0]):
        image = images[i]
        for y in range(height):
            source = max(np.float32(0.0), scale_y * (np.float32(y) + np.float32(0.5)) - np.float32(0.5))
            top = min(int(source), grid_h - 1)
            bottom = min(top + 1, grid_h - 1)
            down = source - np.float32(top)
            for column in range(grid_w):  # the coarse row at this height
                across[column] = (np.float32(1.0) - down) * opacity[i, top, column] + down * opacity[i, bottom, column]
            for channel in range(channels):
                shade = darkening[image, channel]
                row = x[image, channel, y]
                for column in range(width):
                    a, b = across[np.uint64(left[column])], across[np.uint64(right[column])]
                    mask = a + weight[column] * (b - a)
                    row[column] *= np.float32(1.0) + mask * shade


@_compiled
def to_uint8(source, out):
    """Float (B, C, H, W) `source` in [0, 1] as rounded uint8 (B, H, W, C) `out`, clamped (ties to
    even, as torch rounds): one pass, where torch scales, rounds, clamps, narrows and interleaves
    in five. `from_uint8` is its mirror image."""
    images, channels, height, width = source.shape
    for image in range(images):
        for y in range(height):
            row = out[image, y]
            if channels == 3:  # the three written side by side: the loop then vectorises
                red, green, blue = source[image, 0, y], source[image, 1, y], source[image, 2, y]
                for x in range(width):
                    column = np.uint64(x)
                    row[column, np.uint64(0)] = _level(red[x])
                    row[column, np.uint64(1)] = _level(green[x])
                    row[column, np.uint64(2)] = _level(blue[x])
                continue
            for channel in range(channels):
                line = source[image, channel, y]
                for x in range(width):
                    row[np.uint64(x), np.uint64(channel)] = _level(line[x])


@_compiled
def _level(value):
    """One float in [0, 1] as its rounded, clamped uint8 level."""
    scaled = min(max(value * np.float32(255.0), np.float32(0.0)), np.float32(255.0))
    return np.uint8(np.int32(np.rint(scaled)))


@_compiled
def from_uint8(source, out):
    """uint8 (B, H, W, C) `source` as float32 (B, C, H, W) `out` in [0, 1] (value / 255, exactly as
    torch divides): one pass, where torch transposes, widens and divides in three."""
    images, height, width, channels = source.shape
    scale = np.float32(255.0)
    for image in range(images):
        for y in range(height):
            row = source[image, y]
            if channels == 3:  # the three read side by side: the loop then vectorises
                red, green, blue = out[image, 0, y], out[image, 1, y], out[image, 2, y]
                for x in range(width):
                    column = np.uint64(x)
                    red[x] = np.float32(row[column, np.uint64(0)]) / scale
                    green[x] = np.float32(row[column, np.uint64(1)]) / scale
                    blue[x] = np.float32(row[column, np.uint64(2)]) / scale
                continue
            for channel in range(channels):
                line = out[image, channel, y]
                for x in range(width):
                    line[x] = np.float32(row[np.uint64(x), np.uint64(channel)]) / scale
