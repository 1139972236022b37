# Copyright (c) OpenMMLab. All rights reserved.
"""mmengine's CheckpointHook with a crash-safe save sequence."""
import os
import os.path as osp
from collections import deque
from typing import List, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from mmseg_dupl.utils import durable_io
from mmseg_dupl.utils.finite import non_finite_names
from .unwrap import unwrap_model

#: Name of mmengine's pointer to the newest checkpoint, in ``work_dir``.
POINTER_NAME = 'last_checkpoint'


@HOOKS.register_module()
class DurableCheckpointHook(CheckpointHook):
    """``CheckpointHook`` whose checkpoints survive a kill at any moment.

    mmengine 0.10.7 deletes the oldest kept checkpoint *before* writing the
    new one, writes the new one in place, then rewrites ``last_checkpoint``
    in place. A kill in between leaves a truncated newest file, a 0-byte
    pointer, or (``max_keep_ckpts=1``) no loadable checkpoint at all. Here
    each save is:

    .. code:: text

        1. runner.save_checkpoint -> <name>.<pid>.tmp  (torch.save)
        2. fsync <name>.<pid>.tmp, rename to <name>, fsync the folder
        3. last_checkpoint.<pid>.tmp <- path, fsync, rename, fsync the folder
        4. only now delete the checkpoints beyond max_keep_ckpts

    so at every instant the folder holds a complete checkpoint and
    ``last_checkpoint`` names a complete file (the new or the previous
    one). ``keep_ckpt_ids`` stored in the new checkpoint already list the
    kept steps after step 4, as in mmengine.

    A failure in steps 1-2 (a full disk) deletes ``<name>.tmp`` and raises
    an ``OSError`` naming it and the free space; the previous checkpoint
    and the pointer stay as they were.

    Before step 1 the model's floating-point tensors are checked: a model
    with NaN/inf weights raises, naming them, instead of being saved.

    ``CheckedRunner`` resumes from the newest checkpoint that loads, so
    the leftovers of a kill (a ``.tmp`` file, an older pointer, a not yet
    deleted old checkpoint) do not matter. ``save_best`` checkpoints keep
    mmengine's sequence (the configs do not use them).

    Args:
        **kwargs: Those of :class:`mmengine.hooks.CheckpointHook`.
    """

    def before_train(self, runner) -> None:
        """mmengine's set-up, then refuse a non-local ``out_dir``."""
        super().before_train(runner)
        if not isinstance(self.file_backend, LocalBackend):
            raise ValueError(
                f'default_hooks.checkpoint: {type(self).__name__} writes to '
                f'a local folder (fsync + rename); out_dir={self.out_dir} '
                f'uses {type(self.file_backend).__name__}')

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        """Save the checkpoint of ``step`` with the sequence above."""
        bad = non_finite_names(unwrap_model(runner).state_dict())
        if bad:
            raise FloatingPointError(
                f'refusing to save checkpoint {self.filename_tmpl.format(step)}'
                f': {len(bad)} model tensors hold NaN/inf, e.g. {bad[:5]}')
        kept, dropped = self._next_keep_ids(step)
        if self.max_keep_ckpts > 0:
            runner.message_hub.update_info('keep_ckpt_ids', kept)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp_name = durable_io.tmp_path_for(filename)
        # a failed write (disk full) deletes the partial file and names it
        with durable_io.removed_on_failure(
                osp.join(self.out_dir, tmp_name), self.last_ckpt):
            runner.save_checkpoint(
                self.out_dir,
                tmp_name,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if is_main_process():
                durable_io.commit_file(
                    osp.join(self.out_dir, tmp_name), self.last_ckpt)
        if is_main_process():
            durable_io.write_text_durably(
                osp.join(runner.work_dir, POINTER_NAME), self.last_ckpt)
            for old in dropped:
                self._remove_checkpoint(old)
        if self.max_keep_ckpts > 0:
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)

    def _next_keep_ids(self, step: int) -> Tuple[List[int], List[int]]:
        """Steps kept after saving ``step``, and the steps to delete."""
        if self.max_keep_ckpts <= 0:
            return [], []
        ids = list(self.keep_ckpt_ids)
        if not ids or ids[-1] != step:
            ids.append(step)
        cut = max(0, len(ids) - self.max_keep_ckpts)
        return ids[cut:], ids[:cut]

    def _remove_checkpoint(self, step: int) -> None:
        """Delete the checkpoint of ``step`` if it is there."""
        path = osp.join(self.out_dir, self.filename_tmpl.format(step))
        if osp.isfile(path):
            os.remove(path)
