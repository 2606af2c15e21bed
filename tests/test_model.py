"""The bundled trained model: accurate on held-out data with our runtime, equal to TFLite Micro."""
from __future__ import annotations

import numpy as np

from host_tools.demo import MODEL
from host_tools.train.dataset import generate
from host_tools.train.train_unet import evaluate, ours_predictor, tflm_predictor


def test_bundled_model_segments_held_out_images():
    images, masks = generate(12, seed=1)  # the held-out seed of the training report
    ours = ours_predictor(MODEL)
    result = evaluate(ours, images, masks)
    assert result["pixel_accuracy"] >= 0.95 and result["iou"] >= 0.9, result
    ref = tflm_predictor(MODEL)
    for img in images:
        assert np.array_equal(ours(img), ref(img))
