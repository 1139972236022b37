# Stage 2 of DuPL on PASCAL VOC, all but the model: the pseudo-label dataset
# (datasets/voc12aug_pseudo_labels_512x512.py) with mmseg's stock runtime
# and 20k schedule, the plugin import and the CPU-capable runner.
_base_ = [
    './datasets/voc12aug_pseudo_labels_512x512.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['mmseg_dupl'], allow_failed_imports=False)
# mmengine's Runner, plus gloo DDP (SyncBN -> BN) on hosts without CUDA
runner_type = 'CPULaunchRunner'
crop_size = (512, 512)
