"""Data augmentation: an Albumentations pipeline as ``Network.fit(augment=...)``.

``Network.fit`` calls ``augment(x_batch, y_batch)`` on every training batch and trains on
the ``(x_batch, y_batch)`` it returns. Albumentations transforms one image at a time, in
``(H, W, C)`` layout; :class:`Augment` does the bookkeeping between the two::

    import albumentations as A
    augment = Augment([A.HorizontalFlip(), A.Affine(rotate=(-10, 10))])
    net.fit(x, y, augment=augment)                       # classification: y unchanged

    augment = Augment([A.HorizontalFlip(), A.RandomCrop(224, 224)], boxes=True)
    net.fit(x, targets, augment=augment)                 # detection: boxes follow the image

Albumentations is the optional extra ``pip install -e ".[augment]"``; it is imported only
when a list of transforms has to be composed (nothing imports it with ``nn``).
"""
from __future__ import annotations

import numpy as np


def import_albumentations():
    """The ``albumentations`` module, or an ``ImportError`` that says how to install it."""
    try:
        import albumentations
    except ImportError as exc:
        raise ImportError('data augmentation needs Albumentations, an optional extra of nn: '
                          'pip install -e ".[augment]"') from exc
    return albumentations


class Augment:
    """Apply an Albumentations pipeline to each image of ``(N, C, H, W)`` batches.

    Parameters
    ----------
    pipeline : callable or list of transforms
        An ``A.Compose`` (or anything called as ``pipeline(image=..., bboxes=..., labels=...)``
        that returns a dict with ``"image"`` and, for boxes, ``"bboxes"`` and the label field),
        or a list of transforms to compose. With ``boxes=True`` a composed pipeline needs
        ``bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"])``; a list is
        composed that way here.
    boxes : bool
        False: ``y`` is passed through (classification). True: ``y`` holds one dict per image
        with ``"boxes"`` ``(k, 4)`` as ``(x1, y1, x2, y2)`` pixels (the targets of
        :func:`load_voc` and :func:`make_radio_sky`, as a list or a NumPy object array); the
        boxes are transformed with the image, and every per-box array of the dict (classes,
        difficult, params, ...) keeps the rows of the boxes that survive (a crop can drop
        some). Those other arrays are not transformed: a rotation changes a box but not a
        position angle in ``"params"``.
    label_field : str
        The ``label_fields`` name the pipeline's ``BboxParams`` declares.
    """

    def __init__(self, pipeline, boxes: bool = False, label_field: str = "labels"):
        if isinstance(pipeline, (list, tuple)):
            A = import_albumentations()
            bbox_params = A.BboxParams(format="pascal_voc", label_fields=[label_field]) \
                if boxes else None
            pipeline = A.Compose(list(pipeline), bbox_params=bbox_params)
        if not callable(pipeline):
            raise TypeError(f"Augment: pipeline must be an Albumentations Compose (or a list of "
                            f"transforms), got {type(pipeline).__name__}")
        self.pipeline, self.boxes, self.label_field = pipeline, boxes, label_field

    def __call__(self, x, y):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"Augment: expected a batch of images (N, C, H, W), got shape "
                             f"{x.shape}; give images channels first (x[:, None] adds C = 1)")
        if self.boxes:
            if len(y) != len(x) or not all(isinstance(t, dict) and "boxes" in t for t in y):
                raise ValueError("Augment(boxes=True): y must hold one dict per image with a "
                                 "'boxes' entry (k, 4), as load_voc and make_radio_sky return")
            pairs = [self._image_and_boxes(image, target) for image, target in zip(x, y)]
            images = [p[0] for p in pairs]
            targets = [p[1] for p in pairs]
            if isinstance(y, np.ndarray):  # what fit indexes; a list stays a list
                out = np.empty(len(targets), dtype=object)
                out[:] = targets
                targets = out
        else:
            images = [self._image(image) for image in x]
            targets = y
        shapes = {image.shape for image in images}
        if len(shapes) > 1:
            raise ValueError(f"Augment: the pipeline returned images of different shapes "
                             f"{sorted(shapes)}; end it with a fixed-size transform (A.Resize, "
                             "A.CenterCrop) so that a batch can be stacked")
        return np.stack(images).astype(x.dtype, copy=False), targets

    @staticmethod
    def _to_hwc(image):
        # Albumentations works on float32 (or uint8) (H, W, C) images
        work = image if image.dtype in (np.uint8, np.float32) else image.astype(np.float32)
        return np.ascontiguousarray(work.transpose(1, 2, 0))

    @staticmethod
    def _to_chw(image):
        image = np.asarray(image)
        return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)

    def _image(self, image):
        return self._to_chw(self.pipeline(image=self._to_hwc(image))["image"])

    def _image_and_boxes(self, image, target):
        boxes = np.asarray(target["boxes"], dtype=np.float32).reshape(-1, 4)
        n = len(boxes)
        # each box carries its row number through the pipeline: the rows that come back say
        # which boxes survived, and so which rows of the other per-box arrays to keep
        out = self.pipeline(image=self._to_hwc(image), bboxes=boxes,
                            **{self.label_field: list(range(n))})
        kept = np.asarray(out[self.label_field], dtype=np.int64).reshape(-1)
        new = {}
        for key, value in target.items():
            if key == "boxes":
                new[key] = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)[:, :4]
            elif isinstance(value, np.ndarray) and value.ndim >= 1 and len(value) == n:
                new[key] = value[kept]
            else:
                new[key] = value
        return self._to_chw(out["image"]), new

    def __repr__(self):
        return f"Augment({self.pipeline!r}, boxes={self.boxes})"
