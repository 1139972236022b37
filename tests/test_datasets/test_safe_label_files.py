# Copyright (c) OpenMMLab. All rights reserved.
"""Label files load without running code from them (issue 11, item 2)."""
import os
import pickle

import numpy as np
import pytest

from mmseg_dupl.datasets.cls_labels import load_cls_labels, write_cls_labels
from mmseg_dupl.utils.safe_npy import load_pickled_npy


class _RunsCommand:
    """Unpickling this object calls os.system(command)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


def _crafted_npy(path, marker) -> None:
    # A valid .npy header (0-d object array) whose pickle, once loaded by
    # np.load(allow_pickle=True), creates ``marker``.
    payload = {'2007_000032': _RunsCommand(f'touch {marker}')}
    header = dict(descr='|O', fortran_order=False, shape=())
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(f, header)
        pickle.dump(payload, f, protocol=3)


def test_payload_runs_with_plain_numpy(tmp_path):
    # the probe of the issue: np.load with allow_pickle runs the command
    path, marker = tmp_path / 'evil.npy', tmp_path / 'pwned'
    _crafted_npy(str(path), marker)
    np.load(str(path), allow_pickle=True)
    assert marker.exists()


def test_payload_refused_and_runs_nothing(tmp_path):
    path, marker = tmp_path / 'cls_labels_onehot.npy', tmp_path / 'pwned'
    _crafted_npy(str(path), marker)
    with pytest.raises(ValueError) as err:
        load_cls_labels(str(path))
    assert str(path) in str(err.value)
    assert 'system' in str(err.value)
    assert not marker.exists()


def test_official_dict_of_each_dtype_loads(tmp_path):
    path = str(tmp_path / 'l.npy')
    labels = {
        'a': np.array([0, 1, 0], np.float32),
        'b': np.array([1, 0, 0], np.uint8),
        'c': np.array([0, 0, 1], np.int64),
        'd': np.array([1, 1, 0], np.float64),
    }
    np.save(path, labels)
    out = load_cls_labels(path, num_classes=3)
    for name, vec in labels.items():
        np.testing.assert_array_equal(out[name], vec)
        assert out[name].dtype == np.float32


def test_protocol2_pickle_with_latin1_bytes_loads(tmp_path):
    # files pickled at protocol 2 carry array buffers via _codecs.encode
    path = str(tmp_path / 'old.npy')
    arr = np.empty((), dtype=object)
    arr[()] = {'x': np.array([0, 1], np.float32)}
    with open(path, 'wb') as f:
        np.lib.format.write_array_header_1_0(
            f, dict(descr='|O', fortran_order=False, shape=()))
        pickle.dump(arr, f, protocol=2)
    np.testing.assert_array_equal(load_cls_labels(path)['x'], [0, 1])


def test_plain_numeric_npy_needs_no_pickle(tmp_path):
    path = str(tmp_path / 'm.npy')
    np.save(path, np.eye(3))
    np.testing.assert_array_equal(load_pickled_npy(path), np.eye(3))


def test_npz_roundtrip_is_pickle_free(tmp_path):
    labels = {'a': np.array([1, 0, 1]), 'b': np.array([0, 1, 0])}
    path = str(tmp_path / 'labels.npz')
    write_cls_labels(labels, path)
    with np.load(path, allow_pickle=False) as data:
        assert data['names'].dtype.kind == 'U'
        assert data['labels'].shape == (2, 3)
    out = load_cls_labels(path, num_classes=3)
    np.testing.assert_array_equal(out['a'], [1, 0, 1])
    np.testing.assert_array_equal(out['b'], [0, 1, 0])


def test_npz_with_pickled_names_refused(tmp_path):
    path = str(tmp_path / 'labels.npz')
    np.savez(path, names=np.array(['a'], dtype=object),
             labels=np.ones((1, 2)))
    with pytest.raises(ValueError, match='labels.npz'):
        load_cls_labels(path)


def test_npz_missing_array_named(tmp_path):
    path = str(tmp_path / 'labels.npz')
    np.savez(path, names=np.array(['a']))
    with pytest.raises(ValueError, match=r"labels\.npz.*\['labels'\]"):
        load_cls_labels(path)
