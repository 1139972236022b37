# Copyright (c) OpenMMLab. All rights reserved.
"""What the segmentor reads from a batch: the weak/strong branches and the
per-sample metainfo (image-level labels, crop box, homography)."""
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from mmseg.utils import SampleList
from torch import Tensor


def split_branches(
    inputs: Union[Tensor, Dict[str, Tensor]],
    data_samples: Union[SampleList, Dict[str, SampleList]]
) -> Tuple[Tensor, Optional[Tensor], SampleList, Optional[SampleList]]:
    """``(weak, strong, weak_samples, strong_samples)`` from multi-branch
    or plain inputs (strong is None for plain ones)."""
    if isinstance(inputs, dict):
        return (inputs['weak'], inputs.get('strong'), data_samples['weak'],
                data_samples.get('strong'))
    return inputs, None, data_samples, None


def meta_tensor(samples: SampleList, key: str, like: Tensor) -> Tensor:
    """Stack a per-sample metainfo array into a tensor on ``like``'s
    device, e.g. ``cls_labels`` (B, C); a missing key names the image."""
    missing = [i for i, s in enumerate(samples) if key not in s]
    if missing:
        path = samples[missing[0]].metainfo.get('img_path', '?')
        raise KeyError(
            f'"{key}" is missing from the data samples (first: {path}). '
            f'Add it to the pipeline (PackWSSSInputs packs it).')
    values = [np.asarray(s.metainfo[key]) for s in samples]
    return torch.as_tensor(np.stack(values), device=like.device)


def crop_boxes(samples: SampleList, like: Tensor) -> Optional[Tensor]:
    """The crops' valid boxes ``[r0, r1, c0, c1]``, long (B, 4), or None
    when the samples carry none."""
    if all('img_box' in s for s in samples):
        return meta_tensor(samples, 'img_box', like).long()
    return None
