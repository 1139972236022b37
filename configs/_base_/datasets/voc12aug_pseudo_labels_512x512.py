# Stage 2 of DuPL on PASCAL VOC: mmseg's stock VOC dataset (PascalVOCDataset,
# its 512x512 pipelines) with the exported pseudo labels as train masks and
# the real VOC val masks for validation.
#
# Paths: data_root is resolved from this file's folder (the repository's
# data/VOCdevkit/VOC2012), so the configs run from any working directory.
# The pseudo-label folder has no default; tools/export_pseudo_labels.py
# prints the full command. By hand:
#   --cfg-options train_dataloader.dataset.data_prefix.seg_map_path=/abs/dir
# (a relative folder is taken relative to data_root, as mmengine does). VOC
# elsewhere: set train_dataloader.dataset.data_root, val_dataloader... and
# test_dataloader.dataset.data_root, or link it to data/VOCdevkit.
_base_ = ['mmseg::_base_/datasets/pascal_voc12.py']
data_root = '{{ fileDirname }}/../../../data/VOCdevkit/VOC2012'
pseudo_label_dir = 'UNSET-train_dataloader.dataset.data_prefix.seg_map_path'
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        data_prefix=dict(seg_map_path=pseudo_label_dir)))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
