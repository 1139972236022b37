# Copyright (c) OpenMMLab. All rights reserved.
"""The Pascal VOC colour map, shared by datasets, hooks and tools."""
import numpy as np


def voc_colormap(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map (bit-interleaved), ``(n, 3)`` uint8.

    Entry 255 is VOC's ignore colour (224, 224, 192); entries 0..20 equal
    mmseg's ``PascalVOCDataset`` palette.
    """
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
        cmap[i] = rgb
    return cmap
