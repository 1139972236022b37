# DuPL with two DeiT-B/16 students (algorithm.md §2): mmpretrain's ViT set up
# as the
# reference, a GMP classifier and an aux classifier per student, LargeFOV.
num_classes = 20
# mmpretrain's conversion of the official DeiT-B ImageNet-1k weights (the
# reference loads deit_base_patch16_224-b5f2ef4d.pth). Pass a local file with
# --cfg-options model.student.backbone.init_cfg.checkpoint=PATH.
pretrained = ('https://download.openmmlab.com/mmclassification/v0/deit/'
              'deit-base_3rdparty_pt-16xb64_in1k_20211124-6f40c188.pth')
data_preprocessor = dict(
    type='MultiBranchSegDataPreProcessor',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255))
student = dict(
    type='DuPLStudent',
    num_classes=num_classes,
    in_channels=768,
    backbone=dict(
        type='DuPLVisionTransformer',
        arch='deit-base',
        img_size=224,
        patch_size=16,
        out_indices=(9, 11),
        drop_rate=0.,
        drop_path_rate=0.,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(
        type='LargeFOVHead',
        in_channels=768,
        channels=512,
        dilation=5,
        num_classes=num_classes + 1))
model = dict(
    type='DualStudentSegmentor',
    num_classes=num_classes,
    data_preprocessor=data_preprocessor,
    student=student,
    discrepancy_loss=dict(type='DiscrepancyLoss'),
    # CAMs -> tau_i -> PAR-refined labels -> GMM filter (algorithm.md §4-8),
    # the official PAR and GMM numbers; swap it for another labeller here.
    pseudo_labeler=dict(type='DuPLPseudoLabeler'),
    train_cfg=dict(),
    # per_student_outputs='val': in the runner's validation loop every
    # student's seg / CAM / aux-CAM labels and class logits go into the
    # data samples for DualStudentMetric (tools/test.py unchanged).
    test_cfg=dict(
        mode='whole',
        predict_on='seg',
        student='s1',
        per_student_outputs='val'))
# The schedule hooks apply model.train_cfg's DuPLSchedule at runner.iter
# (algorithm.md §9, "run-time path"); the values live in model.train_cfg.
custom_hooks = [
    dict(type='SetIterInfoHook'),  # label source and term weights
    dict(type='CosineThresholdHook'),  # tau_c, logged per class
    dict(type='GMMNoiseFilterHook'),  # GMM filter, then consistency
]
