# Copyright (c) OpenMMLab. All rights reserved.
"""Packing of the GMM fit values into chunks, and their moments (the
batched ``gmm_noise_mask``, see ``gmm.py``)."""
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

#: Width of the chunks the fit values are packed into (a multiple of 64).
_CHUNK = 4096


def _select(x: Tensor, keep: Tensor) -> Tensor:
    """``x[keep]`` flattened in row-major order.

    Args:
        x (Tensor): Values, any shape.
        keep (Tensor): Bool, shape of ``x``.

    Returns:
        Tensor: The kept values, shape (K, ).
    """
    if x.device.type != 'cpu':
        return x.masked_select(keep)
    # torch's CPU masked_select (a nonzero, then a gather) takes 3 to 5
    # times numpy's compress on a batch of 448x448 maps.
    kept = np.compress(keep.numpy().ravel(), x.numpy().ravel())
    return torch.from_numpy(kept)


def _chunk_layout(counts: Tensor, width: int) -> Tuple[Tensor, Tensor]:
    """Split rows of ``counts`` values into chunks of ``width``.

    Args:
        counts (Tensor): Values per row, (R, ), all > 0.
        width (int): Chunk width W.

    Returns:
        tuple[Tensor]: The row of each chunk (C, ) and the bool mask of the
        chunks' valid slots (C, W), rows in order, each row's values
        filling its chunks from the start.
    """
    chunks = (counts + width - 1) // width
    row = torch.repeat_interleave(
        torch.arange(counts.numel(), device=counts.device), chunks)
    first = (chunks.cumsum(0) - chunks)[row]
    index = torch.arange(row.numel(), device=counts.device) - first
    filled = (counts[row] - index * width).clamp(max=width)
    slots = torch.arange(width, device=counts.device)
    return row, slots < filled[:, None]


def pack_fit_values(x: Tensor, keep: Tensor,
          counts: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Pack the kept values of the rows into zero-padded chunks.

    Chunks (instead of one padded row per image) keep the padding small
    when the images have very different numbers of fit pixels.

    Args:
        x (Tensor): Values, (N, P).
        keep (Tensor): Bool (N, P), the values to pack, in R rows.
        counts (Tensor): The kept count of each of these rows, (R, ),
            all > 0.

    Returns:
        tuple[Tensor]: ``values`` (C, W), zero after each chunk's values,
        their bool mask ``valid`` (C, W) and the row (0..R-1) of each
        chunk (C, ).
    """
    counts = counts.long()
    # W: a multiple of 64 (see ``_e_step``)
    width = min(_CHUNK, (int(counts.max()) + 63) // 64 * 64)
    row, valid = _chunk_layout(counts, width)
    values = x.new_zeros(valid.shape)
    return values.masked_scatter_(valid, _select(x, keep)), valid, row


def row_sums(chunk_sums: Tensor, row: Tensor, rows: int) -> Tensor:
    """Add up per-chunk sums (C, ...) into float64 per-row sums (R, ...)."""
    out = chunk_sums.new_zeros((rows, ) + chunk_sums.shape[1:],
                               dtype=torch.float64)
    return out.index_add_(0, row, chunk_sums.double())


def weighted_moments(weights: Tensor, feats: Tensor, row: Tensor,
             rows: int) -> Tensor:
    """Weighted sums ``[sum w, sum w x, sum w x^2]`` of every row.

    One batched matrix product over the chunks; the features are zero on
    padding, so the weights there do not matter.

    Args:
        weights (Tensor): Shape (C, K, W), K weight rows per chunk.
        feats (Tensor): Features from ``centred_features``, (C, 3, W).
        row (Tensor): Row of each chunk, (C, ).
        rows (int): Number of rows R.

    Returns:
        Tensor: float64 sums, shape (R, K, 3).
    """
    return row_sums(torch.bmm(weights, feats.transpose(1, 2)), row, rows)


def centred_features(values: Tensor, valid: Tensor, row: Tensor,
                      rows: int) -> Tuple[Tensor, Tensor]:
    """Features ``[1, x - shift, (x - shift)^2]`` of the packed values.

    Centring each row on its mean keeps the float32 sums of squares well
    conditioned (variances come from ``E[x^2] - E[x]^2``).

    Args:
        values (Tensor): Packed values (C, W), zero where not valid.
        valid (Tensor): Bool (C, W).
        row (Tensor): Row of each chunk, (C, ).
        rows (int): Number of rows R.

    Returns:
        tuple[Tensor]: ``feats`` (C, 3, W) in the values' dtype, all three
        zero on padding, and the float64 ``shift`` (R, ) that was removed
        (the row mean rounded to the values' dtype).
    """
    feats = values.new_empty(values.shape[0], 3, values.shape[1])
    feats[:, 0] = valid
    sums = row_sums(torch.stack([valid.sum(1), values.sum(1)], 1), row,
                     rows)
    shift = (sums[:, 1] / sums[:, 0]).to(values.dtype)
    torch.sub(values, shift[row, None], out=feats[:, 1]).mul_(feats[:, 0])
    torch.mul(feats[:, 1], feats[:, 1], out=feats[:, 2])
    return feats, shift.double()
