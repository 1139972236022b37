# Copyright (c) OpenMMLab. All rights reserved.
"""MS COCO 2014 for weakly supervised segmentation (image-level labels)."""
from mmseg.registry import DATASETS

from mmseg_dupl.visualization.palette import voc_colormap
from .voc_wsss_dataset import VOCWSSSDataset

COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
    'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv',
    'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave',
    'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
    'scissors', 'teddy bear', 'hair drier', 'toothbrush')


@DATASETS.register_module()
class COCOWSSSDataset(VOCWSSSDataset):
    """MS COCO 2014 with VOC-style masks, the ToCo / DuPL layout (algorithm.md
    §12).

    80 foreground classes in the standard (detection) order, plus
    background: masks hold 0 (background), 1..80 and 255 (ignore), and the
    label vectors have 80 entries. The palette is the VOC colour map
    extended to 81 entries. Layout under ``data_root``::

        JPEGImages/{train2014,val2014}/<name>.jpg
        SegmentationClass/{train2014,val2014}/<name>.png
        train.txt, val_part.txt      names without suffix, e.g.
                                     COCO_train2014_000000000009
        cls_labels_onehot.npy        not in the official repository:
                                     tools/make_cls_labels.py writes it
                                     (--num-classes 80)

    COCO has grayscale JPEGs; ``LoadCheckedImageFromFile`` turns them into
    3-channel BGR, as the reference stacks them to 3 channels.

    Args:
        ann_file (str): Split file, e.g. ``'train.txt'`` or
            ``'val_part.txt'``.
        data_prefix (dict, optional): Defaults to
            ``dict(img_path='JPEGImages/train2014',
            seg_map_path='SegmentationClass/train2014')``; set both to
            ``.../val2014`` for the validation lists.
        **kwargs: See :class:`VOCWSSSDataset`.
    """
    METAINFO = dict(
        classes=('background', ) + COCO_CLASSES,
        palette=voc_colormap(len(COCO_CLASSES) + 1).tolist())
    DEFAULT_DATA_PREFIX = dict(
        img_path='JPEGImages/train2014',
        seg_map_path='SegmentationClass/train2014')
