# Example: DuPL's DualStudentSegmentor with mmpretrain's DeiT-S/16 as the
# students' backbone instead of DeiT-B: the segmentor takes any mmpretrain
# ViT arch; only the feature width (384) changes in the heads.
#   tools/dist_train.sh configs/examples/dupl_deit-s_voc.py 4
# Offline: --cfg-options model.student.backbone.init_cfg.checkpoint=FILE
# (mmpretrain's or the timm DeiT-S file, deit_small_patch16_224-cd65a155.pth).
_base_ = ['../dupl_vit-b_voc.py']
embed_dims = 384
pretrained = ('https://download.openmmlab.com/mmclassification/v0/deit/'
              'deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth')
model = dict(
    student=dict(
        in_channels=embed_dims,
        backbone=dict(
            arch='deit-small',
            init_cfg=dict(checkpoint=pretrained)),
        decode_head=dict(in_channels=embed_dims)))
