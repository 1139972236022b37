# COCO 2014 with VOC-style masks (80 classes, algorithm.md §12), DuPL/ToCo
# layout:
#   JPEGImages/{train2014,val2014}/*.jpg,
#   SegmentationClass/{train2014,val2014}/*.png,
#   train.txt, val_part.txt (names without suffix), cls_labels_onehot.npy
_base_ = ['./voc12aug_wsss_448x448.py']
dataset_type = 'COCOWSSSDataset'
# Resolved from this file: the repository's data/coco from any working
# directory.
data_root = '{{ fileDirname }}/../../../data/coco'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.txt',
        data_prefix=dict(
            img_path='JPEGImages/train2014',
            seg_map_path='SegmentationClass/train2014')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val_part.txt',
        data_prefix=dict(
            img_path='JPEGImages/val2014',
            seg_map_path='SegmentationClass/val2014')))
test_dataloader = val_dataloader
