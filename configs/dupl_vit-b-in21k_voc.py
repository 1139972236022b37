# DuPL with ViT-B/16 pretrained on ImageNet-21k and fine-tuned on 1k (the
# reference's jx_vit_base_p16_224 weights, spec 2.2), PASCAL VOC, 20k iters.
_base_ = ['./dupl_vit-b_voc.py']
pretrained = ('https://download.openmmlab.com/mmclassification/v0/vit/'
              'finetune/vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-384_'
              '20210928-98e8652b.pth')
model = dict(
    student=dict(
        backbone=dict(
            arch='b',
            init_cfg=dict(
                type='Pretrained', checkpoint=pretrained,
                prefix='backbone.'))))
