# Copyright (c) OpenMMLab. All rights reserved.
"""Image loading with clear errors and a guaranteed 3-channel result."""
import io
import logging
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from PIL import Image

from mmseg.registry import TRANSFORMS

_JPEG_SOI = b'\xff\xd8'
_JPEG_EOI = b'\xff\xd9'
_JPEG_SOS = b'\xff\xda'
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'IEND'


def looks_truncated(content: bytes) -> bool:
    """Cheap end-marker test for JPEG and PNG byte strings.

    A complete JPEG has a start-of-scan marker and its end-of-image marker
    after the last one (``FFD9`` cannot occur inside entropy-coded data,
    but it can in an EXIF thumbnail before the scan); a complete PNG
    ends with the ``IEND`` chunk. Other formats return False. A True result
    may be a false alarm (e.g. junk appended after the image), so callers
    confirm it with a full decode (:func:`pil_decode_error`).

    Args:
        content (bytes): The file's bytes.

    Returns:
        bool: Whether the end marker is missing.
    """
    if content.startswith(_JPEG_SOI):
        sos = content.rfind(_JPEG_SOS)  # -1: cut before any image data
        return sos < 0 or content.rfind(_JPEG_EOI) < sos
    if content.startswith(_PNG_MAGIC):
        return content.rfind(_PNG_IEND) < len(content) - 12
    return False


def pil_decode_error(content: bytes) -> Optional[str]:
    """Fully decode with PIL; return its error message, or None if fine.

    PIL raises on truncated data (unless the user set
    ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``), whatever the OpenCV build
    does (recent builds return None, older ones could fill the missing
    rows with grey and only print a warning).
    """
    try:
        with Image.open(io.BytesIO(content)) as img:
            img.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError...
        return f'{type(e).__name__}: {e}'
    return None


def to_three_channels(img: np.ndarray) -> np.ndarray:
    """Grayscale ``(H, W)`` / ``(H, W, 1)`` -> ``(H, W, 3)`` by repetition;
    ``(H, W, 4)`` BGRA -> BGR by dropping alpha; 3 channels unchanged."""
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[..., :3])
    if img.shape[2] != 3:
        raise ValueError(f'unsupported number of channels {img.shape[2]}')
    return img


@TRANSFORMS.register_module()
class LoadCheckedImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that fails clearly and always gives 3 channels.

    mmcv's loader either raises deep inside a file backend or decoder
    (PIL's "image file is truncated" does not name the file), or asserts on
    a ``None`` image (an assert that ``python -O`` removes), and some
    OpenCV builds decode a truncated JPEG into an image whose missing rows
    are grey, printing only a warning. This loader raises instead:

    - ``FileNotFoundError`` naming the path for a missing file;
    - ``OSError`` naming the path for an empty, unreadable, undecodable or
      truncated (JPEG/PNG without its end marker, confirmed by a full PIL
      decode) file.

    Corruption inside the compressed data that a decoder silently recovers
    from cannot be detected without a reference and is not.

    With ``ignore_empty=True`` (mmcv's flag) the transform logs a warning
    naming the file and returns None instead, so ``BaseDataset`` fetches
    another sample in training.

    The image is always ``(H, W, 3)`` BGR (the mmseg convention): grayscale
    images (common in COCO) are repeated to three channels, as the
    reference does, and the alpha channel of RGBA images is dropped, also
    when ``color_type='grayscale'`` or ``'unchanged'`` is set. Small images
    pass unchanged; cropping pads them (``RandomCropWithValidBox``).

    Required Keys:

    - img_path

    Modified Keys:

    - img
    - img_shape
    - ori_shape

    Args:
        See :class:`mmcv.transforms.LoadImageFromFile`.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``.

        Args:
            results (dict): Result dict with ``img_path``.

        Returns:
            dict, optional: ``results`` with ``img`` (uint8, or float32 with
            ``to_float32``, ``(H, W, 3)``), ``img_shape`` and ``ori_shape``;
            None for a bad file when ``ignore_empty=True``.
        """
        filename = results['img_path']
        try:
            img = self._load(filename)
        except OSError as e:
            if not self.ignore_empty:
                raise
            print_log(
                f'skipping image: {e}', logger='current',
                level=logging.WARNING)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _read_bytes(self, filename: str) -> bytes:
        """Bytes of the file via the configured backend, clear errors."""
        try:
            if self.file_client_args is not None:
                client = fileio.FileClient.infer_client(
                    self.file_client_args, filename)
                content = client.get(filename)
            else:
                content = fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'image file not found: {filename}') \
                from e
        except Exception as e:  # backends raise many types
            raise OSError(f'cannot read image file {filename}: {e}') from e
        if not content:
            raise OSError(f'image file is empty: {filename}')
        return content

    def _load(self, filename: str) -> np.ndarray:
        """Read, check completeness, decode and fix channels."""
        content = self._read_bytes(filename)
        if looks_truncated(content):
            error = pil_decode_error(content)
            if error is not None:
                raise OSError(f'image file is truncated or corrupt: '
                              f'{filename} ({error})')
        try:
            img = mmcv.imfrombytes(
                content, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as e:  # each decoder raises its own types
            raise OSError(f'cannot decode image {filename} '
                          f'({self.imdecode_backend}): {e}') from e
        if img is None or img.size == 0:
            raise OSError(f'cannot decode image {filename} '
                          f'({self.imdecode_backend}): corrupt or not an '
                          'image')
        try:
            return to_three_channels(img)
        except ValueError as e:
            raise OSError(f'{filename}: {e}') from e
