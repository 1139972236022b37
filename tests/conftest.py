# Copyright (c) OpenMMLab. All rights reserved.
"""Shared test setup: mmseg's default scope, so registries resolve types."""
from mmengine.registry import init_default_scope

init_default_scope('mmseg')
