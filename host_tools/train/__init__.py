"""Host-side training and model-building tools (need TensorFlow; not used on the device).

Modules:
    models        Keras builders: the TinySeg Tiny U-Net and the ops-zoo fixture models.
    tflite_tools  int8 conversion, op histograms and TFLite Micro measurements.
    fixtures      ``python -m host_tools.train.fixtures OUTDIR`` writes the test fixtures.
    dataset       synthetic segmentation data (numpy only, usable without TensorFlow).
    train_unet    ``python -m host_tools.train.train_unet`` trains the default model.
"""
