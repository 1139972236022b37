# Copyright (c) OpenMMLab. All rights reserved.
"""DuPL's pseudo-label stage (algorithm.md §4, §7, §8) as one public module."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor

from ..cam.cam_labels import cam_to_label_dynamic_thr, scale_img_box
from ..noise_filter import (DEFAULT_GMM_CFG, filter_noisy_labels,
                            self_loss_noise_fits)
from ..refinement.par import PAR
from ..refinement.refine_cams import refine_cams_with_dynamic_thres
from .pseudo_labels import PseudoLabels


@MODELS.register_module()
class DuPLPseudoLabeler(nn.Module):
    """CAMs in, pseudo labels out: the part of DuPL between the CAMs and the
    losses, usable without ``DualStudentSegmentor``.

    In the order of a training step (numbers: sections of
    docs/algorithm.md):

    .. code:: text

        tau_i     = max over image i's present classes of tau_c      (7)
        token     = two-threshold label of the aux CAM at token size (4.1)
        Y_k       = PAR-refined two-threshold label of cam_k        (4.2-4.3)
        noisy_k   = GMM on CE(S_k, Y_k), each image, fg only          (8)
        Y_k'      = Y_k with noisy_k -> ignore

    It has no parameters (PAR is parameter-free), so it adds nothing to a
    checkpoint. Numbers are the official ones (algorithm.md §15).

    Args:
        par (dict): ``PAR`` arguments. Defaults to the official dilations
            (1, 2, 4, 8, 12, 24) and 10 iterations.
        down_scale (int): PAR runs at 1 / ``down_scale`` of the image.
            Defaults to 2.
        gmm (dict): ``gmm_noise_mask`` arguments (``min_loss``,
            ``min_pixels``, ``min_mean_gap``, ``gamma``); the ones left out
            keep the official 0.1, 1000, 1.0, 0.95.
        fix_token_box (bool): Map the crop box to the token grid for the
            token labels (the reference applies pixel coordinates to the
            grid, algorithm.md §4.1 quirk). Defaults to False.
        ignore_index (int): Ignore value. Defaults to 255.
    """

    def __init__(self,
                 par: dict = dict(dilations=(1, 2, 4, 8, 12, 24), num_iter=10),
                 down_scale: int = 2,
                 gmm: Optional[dict] = None,
                 fix_token_box: bool = False,
                 ignore_index: int = 255) -> None:
        super().__init__()
        if down_scale < 1:
            raise ValueError('DuPLPseudoLabeler: down_scale must be >= 1, '
                             f'got {down_scale}')
        self.par = PAR(**par)
        self.down_scale = down_scale
        unknown = set(gmm or {}) - set(DEFAULT_GMM_CFG)
        if unknown:
            raise ValueError(
                f'DuPLPseudoLabeler: unknown gmm keys {sorted(unknown)}; '
                f'valid: {sorted(DEFAULT_GMM_CFG)}')
        self.gmm_cfg = {**DEFAULT_GMM_CFG, **(gmm or {})}
        self.fix_token_box = fix_token_box
        self.ignore_index = ignore_index

    @staticmethod
    def image_thresholds(class_thresholds: Tensor,
                         cls_labels: Tensor) -> Tensor:
        """tau_i: the max of the class thresholds over the image's present
        classes (algorithm.md §7).

        Args:
            class_thresholds (Tensor): tau_c, shape (C,).
            cls_labels (Tensor): Multi-hot image labels, shape (B, C).

        Returns:
            Tensor: Shape (B,). An image without a present class (the
            datasets refuse those) gets the mean of tau_c.
        """
        per_class = class_thresholds.to(cls_labels.device)[None].expand_as(
            cls_labels)
        present = cls_labels > 0
        masked = torch.where(present, per_class,
                             torch.full_like(per_class, -1.))
        tau = masked.max(dim=1).values
        return torch.where(tau < 0, per_class.mean(dim=1), tau)

    def token_labels(self,
                     cam_aux: Tensor,
                     grid: Tuple[int, int],
                     cls_labels: Tensor,
                     image_thresholds: Tensor,
                     low_thr: float,
                     img_box: Optional[Tensor] = None) -> Tensor:
        """PTC token labels: the aux CAM resized to the token grid, labelled
        with tau_i and tau_l (algorithm.md §4.1).

        Args:
            cam_aux (Tensor): Aux CAMs in [0, 1], (B, C, H, W).
            grid (tuple[int, int]): Token grid (h, w).
            cls_labels (Tensor): Multi-hot labels, (B, C).
            image_thresholds (Tensor): tau_i, (B,).
            low_thr (float): tau_l.
            img_box (Tensor, optional): Crop box in pixels, (B, 4).

        Returns:
            Tensor: Token labels, long (B, h, w).
        """
        cam = resize(cam_aux, grid, mode='bilinear', align_corners=False)
        if img_box is not None and self.fix_token_box:
            img_box = scale_img_box(img_box, cam_aux.shape[-1], grid[-1])
        return cam_to_label_dynamic_thr(
            cam,
            cls_labels,
            high_thr=image_thresholds,
            low_thr=low_thr,
            img_box=img_box,
            ignore_index=self.ignore_index)

    def seg_labels(self,
                   image: Tensor,
                   cam: Tensor,
                   cls_labels: Tensor,
                   image_thresholds: Tensor,
                   low_thr: float,
                   img_box: Optional[Tensor] = None) -> Tensor:
        """PAR-refined two-threshold segmentation labels (algorithm.md §4.3).

        Args:
            image (Tensor): Denormalised images in [0, 1], (B, 3, H, W).
            cam (Tensor): CAMs in [0, 1], (B, C, H, W); absent classes are
                zeroed here (``cam * cls_labels``, as the reference).
            cls_labels (Tensor): Multi-hot labels, (B, C).
            image_thresholds (Tensor): tau_i, (B,).
            low_thr (float): tau_l.
            img_box (Tensor, optional): Crop box in pixels, (B, 4); outside
                is ignored.

        Returns:
            Tensor: Labels, long (B, H, W), 255 where uncertain.
        """
        return refine_cams_with_dynamic_thres(
            image,
            cam * cls_labels[:, :, None, None],
            cls_labels,
            image_thresholds,
            low_thr=low_thr,
            img_box=img_box,
            down_scale=self.down_scale,
            ignore_index=self.ignore_index,
            par=self.par)

    def noise_masks(self,
                    seg_logits: Sequence[Tensor],
                    labels: Sequence[Tensor],
                    ignore_index: Optional[int] = None) -> List[Tensor]:
        """GMM noise masks of each producer's labels, from its own
        self-loss ``CE(S_k, Y_k)`` (algorithm.md §8); every image of every
        producer
        is fitted in one batched call.

        Args:
            seg_logits (Sequence[Tensor]): Per producer, (B, K, H, W) at
                label size (detached here).
            labels (Sequence[Tensor]): Per producer, (B, H, W).
            ignore_index (int, optional): Defaults to ``self.ignore_index``.

        Returns:
            list[Tensor]: Per producer, bool (B, H, W), True = noisy.
        """
        ignore = self.ignore_index if ignore_index is None else ignore_index
        fits = self_loss_noise_fits(seg_logits, labels, ignore, self.gmm_cfg)
        return [fit.noisy for fit in fits]

    def forward(self,
                image: Tensor,
                cams: Sequence[Tensor],
                cls_labels: Tensor,
                image_thresholds: Tensor,
                low_thr: float,
                img_box: Optional[Tensor] = None,
                seg_logits: Optional[Sequence[Tensor]] = None
                ) -> PseudoLabels:
        """Segmentation pseudo labels of every producer, GMM-filtered when
        ``seg_logits`` are given.

        Args:
            image (Tensor): Denormalised images in [0, 1], (B, 3, H, W).
            cams (Sequence[Tensor]): One CAM (B, C, H, W) per producer.
            cls_labels (Tensor): Multi-hot labels, (B, C).
            image_thresholds (Tensor): tau_i, (B,)
                (see :meth:`image_thresholds`).
            low_thr (float): tau_l.
            img_box (Tensor, optional): Crop box in pixels, (B, 4).
            seg_logits (Sequence[Tensor], optional): Each producer's own
                segmentation logits at image size, (B, K, H, W); given, the
                labels are GMM-filtered (phase C).

        Returns:
            PseudoLabels: ``labels``, ``noisy`` and ``filtered``.
        """
        labels = [
            self.seg_labels(image, cam, cls_labels, image_thresholds,
                            low_thr, img_box) for cam in cams
        ]
        if seg_logits is None:
            return PseudoLabels(labels=labels, noisy=None, filtered=labels)
        fits = self_loss_noise_fits(seg_logits, labels, self.ignore_index,
                                    self.gmm_cfg)
        noisy = [fit.noisy for fit in fits]
        filtered = [
            filter_noisy_labels(y, m, self.ignore_index)
            for y, m in zip(labels, noisy)
        ]
        return PseudoLabels(
            labels=labels, noisy=noisy, filtered=filtered, fits=fits)

    def extra_repr(self) -> str:
        return (f'down_scale={self.down_scale}, gmm={self.gmm_cfg}, '
                f'fix_token_box={self.fix_token_box}, '
                f'ignore_index={self.ignore_index}')
