# Copyright (c) OpenMMLab. All rights reserved.
from .checked_runner import CheckedRunner, build_runner
from .cpu_launch_runner import CPULaunchRunner
from .rank_failure import RankFailureError
from .resume_candidates import choose_resume_checkpoint
from .resume_settings import ResumeMismatchError
from .work_dir_lock import WorkDirLock, WorkDirLockedError

__all__ = [
    'CheckedRunner', 'CPULaunchRunner', 'RankFailureError',
    'ResumeMismatchError', 'WorkDirLock', 'WorkDirLockedError',
    'build_runner', 'choose_resume_checkpoint'
]
