# Copyright (c) OpenMMLab. All rights reserved.
"""TiledMultiLabelClsHead scores each mosaic tile from its own tokens."""
import torch

import mmseg_dupl  # noqa: F401
from mmseg_dupl.models.heads import TiledMultiLabelClsHead


def test_scores_each_tile_from_its_own_tokens_in_row_major_order():
    head = TiledMultiLabelClsHead(num_classes=3, in_channels=4, grid=2)
    torch.nn.init.normal_(head.fc.weight)
    feat = torch.zeros(1, 4, 6, 6)
    feat[0, :, :3, 3:] = torch.arange(4.)[:, None, None]  # tile (0, 1) only
    scores = head((feat, )).view(1, 4, 3)
    expected = head.fc(torch.arange(4.))
    assert torch.allclose(scores[0, 1], expected)
    for tile in (0, 2, 3):  # tokens of the other tiles are zero
        assert torch.allclose(scores[0, tile], head.fc.bias)


def test_loss_reads_labels_as_tile_times_classes_plus_class():
    from mmpretrain.structures import DataSample
    head = TiledMultiLabelClsHead(num_classes=2, in_channels=1, grid=2)
    head.fc.weight.data.fill_(10.)
    head.fc.bias.data.fill_(-5.)
    feat = torch.zeros(1, 1, 2, 2)
    feat[0, 0, 1, 0] = 1.  # tile 2 scores +5 on both classes, others -5
    right = DataSample().set_gt_label([4, 5])
    wrong = DataSample().set_gt_label([0, 1])
    assert head.loss((feat, ), [right])['loss'] < \
        head.loss((feat, ), [wrong])['loss']
