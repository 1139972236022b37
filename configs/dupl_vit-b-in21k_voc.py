# DuPL with ViT-B/16 pretrained on ImageNet-21k and fine-tuned on 1k at 224
# (the reference's timm `jx_vit_base_p16_224-80ecf9dd.pth`, algorithm.md §2.2),
# PASCAL VOC, 20k iterations. mmpretrain publishes no conversion of these
# weights, so convert the timm file once:
#   python tools/convert_timm_vit.py jx_vit_base_p16_224-80ecf9dd.pth \
#       pretrain/vit-b16_in21k-ft-in1k-224_mmpretrain.pth
# (the input normalisation stays ImageNet mean/std, as in the reference).
_base_ = ['./dupl_vit-b_voc.py']
pretrained = 'pretrain/vit-b16_in21k-ft-in1k-224_mmpretrain.pth'
model = dict(
    student=dict(
        backbone=dict(
            arch='b',
            init_cfg=dict(
                type='Pretrained', checkpoint=pretrained,
                prefix='backbone.'))))
