# Copyright (c) OpenMMLab. All rights reserved.
"""DuPLTrainState: which fields a loss() still misses, and who writes
them."""
import torch

from mmseg_dupl.models.schedules.dupl_train_state import (WRITERS,
                                                          DuPLTrainState)


def test_unset_names_the_missing_fields_and_skips_phase_c_without_one():
    state = DuPLTrainState()
    assert state.unset(needs_phase_c=True) == [
        'iteration', 'class_thresholds', 'gmm_filter', 'consistency']
    # a schedule without phase C (the baseline) needs no GMM switches
    assert state.unset(needs_phase_c=False) == [
        'iteration', 'class_thresholds']
    state.iteration = 0
    state.class_thresholds = torch.full((5, ), 0.7)
    assert state.unset(needs_phase_c=False) == []
    state.consistency = False  # False is set, not missing
    assert state.unset(needs_phase_c=True) == ['gmm_filter']
    assert set(WRITERS) == {'iteration', 'class_thresholds', 'gmm_filter',
                            'consistency'}
