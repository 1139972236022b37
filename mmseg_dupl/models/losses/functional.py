# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's loss formulas as pure functions (algorithm.md §5).

Ratio-normalised losses (PTC, balanced seg, consistency) pool their sums
and counts over the whole batch given, as the official per-GPU code does.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from ..utils.precision import fp32_island


@fp32_island
def multilabel_cls_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Multi-label soft-margin loss, mean over classes and batch.

    Args:
        logits (Tensor): Class scores, shape (B, C).
        labels (Tensor): Multi-hot labels, shape (B, C).

    Returns:
        Tensor: Scalar loss.
    """
    if logits.shape != labels.shape:
        raise ValueError('multilabel_cls_loss: logits and labels must both '
                         f'be (B, C), got {tuple(logits.shape)} and '
                         f'{tuple(labels.shape)}')
    return F.multilabel_soft_margin_loss(logits, labels.to(logits))


@fp32_island
def per_pixel_ce(logits: Tensor,
                 label: Tensor,
                 ignore_index: int = 255) -> Tensor:
    """Unreduced cross-entropy; ignored pixels get 0.

    Args:
        logits (Tensor): Scores, shape (B, K, H, W).
        label (Tensor): Labels, shape (B, H, W).
        ignore_index (int): Ignored label. Defaults to 255.

    Returns:
        Tensor: Per-pixel loss, shape (B, H, W).
    """
    if logits.dim() != 4 or label.shape != (logits.shape[0],
                                            *logits.shape[2:]):
        raise ValueError('per_pixel_ce: expected logits (B, K, H, W) and '
                         f'label (B, H, W), got {tuple(logits.shape)} and '
                         f'{tuple(label.shape)}')
    return F.cross_entropy(
        logits, label.long(), ignore_index=ignore_index, reduction='none')


@fp32_island
def balanced_seg_loss(logits: Tensor,
                      label: Tensor,
                      ignore_index: int = 255,
                      num_fg_classes: Optional[int] = None) -> Tensor:
    """Background/foreground-balanced CE (ToCo's ``get_seg_loss``).

    ``0.5 * (sum CE[bg] / (#bg + 1e-6) + sum CE[fg] / (#fg + 1e-6))`` with
    bg = label 0 and fg = label not 0 and not ignored, pooled over the
    batch. A part with no pixels contributes 0.

    Args:
        logits (Tensor): Scores at label size, shape (B, K, H, W).
        label (Tensor): Labels, shape (B, H, W).
        ignore_index (int): Ignored label. Defaults to 255.
        num_fg_classes (int, optional): C; when given, K must be C + 1.
            Defaults to None.

    Returns:
        Tensor: Scalar loss.
    """
    if num_fg_classes is not None and logits.shape[1] != num_fg_classes + 1:
        raise ValueError('balanced_seg_loss: logits need num_fg_classes + 1 '
                         f'= {num_fg_classes + 1} channels, got '
                         f'{logits.shape[1]}')
    ce = per_pixel_ce(logits, label, ignore_index)
    bg = label == 0
    fg = (label != 0) & (label != ignore_index)
    bg_loss = (ce * bg).sum() / (bg.sum() + 1e-6)
    fg_loss = (ce * fg).sum() / (fg.sum() + 1e-6)
    return 0.5 * (bg_loss + fg_loss)


@fp32_island
def ptc_loss(features: Tensor, aff_mask: Tensor) -> Tensor:
    """Masked patch-token contrast loss (ToCo's ``get_masked_ptc_loss``).

    ``S = |z_i . z_j|`` with ``z`` the channel-normalised tokens (eps 1e-8);
    ``0.5 * (1 - sum S[M=1] / (#[M=1] + 1)) + 0.5 * sum S[M=0] /
    (#[M=0] + 1)``, pooled over the batch.

    Args:
        features (Tensor): Token features, shape (B, D, h, w).
        aff_mask (Tensor): From ``label_to_aff_mask``, (B, N, N), N = h*w.

    Returns:
        Tensor: Scalar loss.
    """
    if features.dim() != 4:
        raise ValueError('ptc_loss: features must be (B, D, h, w), got '
                         f'{tuple(features.shape)}')
    b, d = features.shape[:2]
    n = features.shape[2] * features.shape[3]
    if aff_mask.shape != (b, n, n):
        raise ValueError(f'ptc_loss: aff_mask must be (B, N, N) = ({b}, '
                         f'{n}, {n}), got {tuple(aff_mask.shape)}')
    z = F.normalize(features.reshape(b, d, n), p=2, dim=1, eps=1e-8)
    sim = torch.matmul(z.transpose(1, 2), z).abs()
    pos = aff_mask == 1
    neg = aff_mask == 0
    pos_term = 1 - (sim * pos).sum() / (pos.sum() + 1)
    neg_term = (sim * neg).sum() / (neg.sum() + 1)
    return 0.5 * pos_term + 0.5 * neg_term


@fp32_island
def discrepancy_loss(feat_a: Tensor,
                     feat_b: Tensor,
                     eps: float = 1e-6) -> Tensor:
    """Stop-gradient cosine discrepancy between two students (algorithm.md §5).

    ``[1 + mean cos(SG(a), b)] + [1 + mean cos(SG(b), a)]`` where the
    cosine compares each channel's flattened spatial vector
    (``nn.CosineSimilarity(dim=-1, eps)`` on (B, D, h*w)). The first term
    only updates ``b``, the second only ``a``. Range [0, 4].

    Args:
        feat_a (Tensor): Features of student 1, (B, D, h, w) or (B, D, N).
        feat_b (Tensor): Features of student 2, same shape.
        eps (float): Cosine eps. Defaults to 1e-6.

    Returns:
        Tensor: Scalar loss.
    """
    if feat_a.shape != feat_b.shape or feat_a.dim() < 3:
        raise ValueError('discrepancy_loss: features must share a (B, D, '
                         f'...) shape, got {tuple(feat_a.shape)} and '
                         f'{tuple(feat_b.shape)}')
    a, b = feat_a.flatten(2), feat_b.flatten(2)
    to_b = F.cosine_similarity(a.detach(), b, dim=-1, eps=eps).mean()
    to_a = F.cosine_similarity(b.detach(), a, dim=-1, eps=eps).mean()
    return (1 + to_b) + (1 + to_a)


@fp32_island
def consistency_loss(strong_logits: Tensor,
                     weak_logits: Tensor,
                     peer_label: Tensor,
                     conf_thr: float = 0.9,
                     ignore_index: int = 255,
                     valid: Optional[Tensor] = None) -> Tensor:
    """Strong-view consistency on the peer-ignored region (algorithm.md §5).

    Target ``argmax(weak)``, confidence ``max softmax(weak)`` (both from the
    detached weak logits); region ``(peer_label == ignore) & (conf >
    conf_thr)``; mean CE of the strong logits over the region, or a zero
    that keeps the graph when the region is empty.

    Args:
        strong_logits (Tensor): Strong-view logits moved to the weak frame,
            shape (B, K, H, W).
        weak_logits (Tensor): Weak-view logits, shape (B, K, H, W).
        peer_label (Tensor): The (filtered) label the peer provides for
            this student, shape (B, H, W).
        conf_thr (float): Confidence threshold. Defaults to 0.9.
        ignore_index (int): Ignored label. Defaults to 255.
        valid (Tensor, optional): Bool (B, H, W); pixels where the strong
            logits exist in the weak frame (an extension for warps that
            leave holes; the official flip + x0.75 covers every pixel).
            Defaults to None (all valid).

    Returns:
        Tensor: Scalar loss.
    """
    if strong_logits.shape != weak_logits.shape or \
            peer_label.shape != (weak_logits.shape[0],
                                 *weak_logits.shape[2:]):
        raise ValueError('consistency_loss: expected strong and weak logits '
                         '(B, K, H, W) and peer_label (B, H, W), got '
                         f'{tuple(strong_logits.shape)}, '
                         f'{tuple(weak_logits.shape)} and '
                         f'{tuple(peer_label.shape)}')
    weak = weak_logits.detach()
    target = weak.argmax(dim=1)
    conf = weak.softmax(dim=1).amax(dim=1)
    region = (peer_label == ignore_index) & (conf > conf_thr)
    if valid is not None:
        region = region & valid
    ce = F.cross_entropy(strong_logits, target, reduction='none')
    return (ce * region).sum() / region.sum().clamp(min=1)
