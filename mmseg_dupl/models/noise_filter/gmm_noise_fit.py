# Copyright (c) OpenMMLab. All rights reserved.
"""What one batched GMM noise fit returns: the mask and each row's fit."""
from dataclasses import dataclass
from typing import Dict, List

import torch
from torch import Tensor


@dataclass
class GMMNoiseFit:
    """The noisy pixels of N rows (images) and what each row's fit did.

    Attributes:
        noisy (Tensor): Bool, shaped like the labels, True = noisy.
        foreground (Tensor): int (N, ), foreground labels per row (neither
            background nor ignore, finite loss).
        fitted (Tensor): Bool (N, ), more than ``min_pixels`` fit values,
            so a GMM was fitted.
        accepted (Tensor): Bool (N, ), fitted and the component means are
            more than ``min_mean_gap`` (eta) apart.
        mean_gap (Tensor): float (N, ), ``|mu_0 - mu_1|`` of the fit, NaN
            where no GMM was fitted.
    """

    noisy: Tensor
    foreground: Tensor
    fitted: Tensor
    accepted: Tensor
    mean_gap: Tensor

    def chunk(self, parts: int) -> List['GMMNoiseFit']:
        """Split the rows into ``parts`` equal groups (one per producer)."""
        fields = (self.noisy, self.foreground, self.fitted, self.accepted,
                  self.mean_gap)
        return [GMMNoiseFit(*group)
                for group in zip(*(f.chunk(parts) for f in fields))]

    def stats(self) -> Dict[str, float]:
        """Logging scalars of these rows.

        Returns:
            dict: ``removed`` (noisy / foreground labels), ``mean_gap``
            (mean over the fitted rows, NaN-free: 0 without a fit),
            ``skipped_pixels`` (rows not fitted: too few fit values) and
            ``skipped_gap`` (fitted rows whose means are within eta).
        """
        noisy = self.noisy.flatten(1).sum()
        removed = float(noisy) / max(int(self.foreground.sum()), 1)
        gaps = self.mean_gap[self.fitted]
        return dict(
            removed=removed,
            mean_gap=float(gaps.mean()) if gaps.numel() else 0.,
            skipped_pixels=int((~self.fitted).sum()),
            skipped_gap=int((self.fitted & ~self.accepted).sum()))


def empty_noise_fit(labels: Tensor) -> GMMNoiseFit:
    """The fit of rows where the filter did not run: nothing noisy.

    Args:
        labels (Tensor): Labels (N, ...).

    Returns:
        GMMNoiseFit: All-False mask, nothing fitted.
    """
    rows = labels.shape[0]
    flags = torch.zeros(rows, dtype=torch.bool, device=labels.device)
    return GMMNoiseFit(
        torch.zeros_like(labels, dtype=torch.bool),
        torch.zeros(rows, dtype=torch.long, device=labels.device), flags,
        flags.clone(),
        torch.full((rows, ), float('nan'), device=labels.device))
