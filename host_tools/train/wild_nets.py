"""Networks shaped like the public int8 models of issue 15, for the planner
and the new ops: MobileNet v1 (0.25, 96x96x1, the person detector's shape),
MobileNet v2 (0.35, 96x96x3), the MLPerf Tiny ResNet-8 (32x32x3), a DS-CNN
keyword spotter (49x10x1), a DeepLab-like segmentation head (dilated ASPP,
bilinear x8 upsampling, ARG_MAX over the classes) and an LR-ASPP-like
MobileNetV3 head (HARD_SWISH, a sigmoid gate, SUB, bilinear upsampling).
Random weights (He init, fixed seeds), BatchNorm folded by the converter,
full-integer int8 with a fixed-seed calibration set: the weights mean
nothing, the shapes and ops are what matters.

    python -m host_tools.train.wild_nets OUT_DIR [NAME ...]

writes NAME.tflite and NAME.input.npy (one int8 input) for each network.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _layers():
    import tensorflow as tf

    return tf.keras.layers


def _bn_relu(x, relu6=True):
    L = _layers()
    x = L.BatchNormalization()(x)
    return L.ReLU(6.0 if relu6 else None)(x)


def _dw_pw(x, ch, stride):
    L = _layers()
    x = L.DepthwiseConv2D(3, stride, padding="same", use_bias=False)(x)
    x = _bn_relu(x)
    x = L.Conv2D(ch, 1, use_bias=False)(x)
    return _bn_relu(x)


def mobilenet_v1():
    """MobileNet v1 0.25 at 96x96x1 (TFLite Micro's person detector layout),
    stages up to 128 channels (the 256-channel tail dropped: small file)."""
    import tensorflow as tf

    L = _layers()
    inp = L.Input((96, 96, 1), batch_size=1)
    x = _bn_relu(L.Conv2D(8, 3, 2, padding="same", use_bias=False)(inp))
    for ch, s in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1)]:
        x = _dw_pw(x, ch, s)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(2)(x)
    return tf.keras.Model(inp, L.Softmax()(x))


def _inverted(x, ch, stride, expand):
    L = _layers()
    cin = x.shape[-1]
    y = _bn_relu(L.Conv2D(cin * expand, 1, use_bias=False)(x)) if expand > 1 else x
    y = _bn_relu(L.DepthwiseConv2D(3, stride, padding="same", use_bias=False)(y))
    y = L.BatchNormalization()(L.Conv2D(ch, 1, use_bias=False)(y))
    return L.Add()([x, y]) if stride == 1 and cin == ch else y


def mobilenet_v2():
    """MobileNet v2 0.35 at 96x96x3, the first four stages (residual ADDs)."""
    import tensorflow as tf

    L = _layers()
    inp = L.Input((96, 96, 3), batch_size=1)
    x = _bn_relu(L.Conv2D(16, 3, 2, padding="same", use_bias=False)(inp))
    x = _inverted(x, 8, 1, 1)
    for ch, s, n in [(8, 2, 2), (16, 2, 3), (24, 2, 4)]:
        for i in range(n):
            x = _inverted(x, ch, s if i == 0 else 1, 6)
    x = _bn_relu(L.Conv2D(128, 1, use_bias=False)(x))
    x = L.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(2)(x)))


def resnet8():
    """MLPerf Tiny image classification ResNet-8 (32x32x3, 16/32/64)."""
    import tensorflow as tf

    L = _layers()
    inp = L.Input((32, 32, 3), batch_size=1)
    x = _bn_relu(L.Conv2D(16, 3, padding="same")(inp), relu6=False)
    for ch, s in [(16, 1), (32, 2), (64, 2)]:
        y = _bn_relu(L.Conv2D(ch, 3, s, padding="same")(x), relu6=False)
        y = L.BatchNormalization()(L.Conv2D(ch, 3, padding="same")(y))
        if s != 1 or x.shape[-1] != ch:
            x = L.Conv2D(ch, 1, s)(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(x.shape[1])(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(10)(x)))


def ds_cnn():
    """MLPerf Tiny keyword spotting DS-CNN (49x10x1 MFCCs, 64 channels)."""
    import tensorflow as tf

    L = _layers()
    inp = L.Input((49, 10, 1), batch_size=1)
    x = _bn_relu(L.Conv2D(64, (10, 4), 2, padding="same", use_bias=False)(inp), relu6=False)
    for _ in range(4):
        x = _bn_relu(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x), relu6=False)
        x = _bn_relu(L.Conv2D(64, 1, use_bias=False)(x), relu6=False)
    x = L.AveragePooling2D(x.shape[1:3])(x)
    x = L.Flatten()(x)
    return tf.keras.Model(inp, L.Softmax()(L.Dense(12)(x)))


def _encoder(inp, widths):
    L = _layers()
    x = _bn_relu(L.Conv2D(widths[0], 3, 2, padding="same", use_bias=False)(inp))
    for ch in widths[1:]:
        x = _dw_pw(x, ch, 2)
        x = _dw_pw(x, ch, 1)
    return x


def deeplab_head():
    """DeepLab-like segmenter: 96x96x3 -> 1/8 features, ASPP (1x1 and
    dilated 3x3 branches, concatenated), 1x1 to 4 classes, bilinear x8
    (align_corners=False, half_pixel_centers=True: Keras' default), ARG_MAX."""
    import tensorflow as tf

    L = _layers()
    inp = L.Input((96, 96, 3), batch_size=1)
    x = _encoder(inp, [8, 16, 32])
    b1 = _bn_relu(L.Conv2D(16, 1, use_bias=False)(x))
    b2 = _bn_relu(L.Conv2D(16, 3, padding="same", dilation_rate=2, use_bias=False)(x))
    b3 = _bn_relu(L.Conv2D(16, 3, padding="same", dilation_rate=3, use_bias=False)(x))
    x = _bn_relu(L.Conv2D(16, 1, use_bias=False)(L.Concatenate()([b1, b2, b3])))
    logits = L.Conv2D(4, 1)(x)
    up = L.Resizing(96, 96, interpolation="bilinear")(logits)
    return tf.keras.Model(inp, L.Lambda(lambda t: tf.argmax(t, axis=-1, output_type=tf.int32))(up))


def lraspp_head():
    """LR-ASPP-like MobileNetV3 head: HARD_SWISH features, a pooled sigmoid
    gate (MUL), a SUB-centred skip, bilinear x2 upsampling (align_corners)."""
    import tensorflow as tf

    L = _layers()

    def hswish(x):
        return x * tf.nn.relu6(x + 3.0) / 6.0

    inp = L.Input((64, 64, 3), batch_size=1)
    x = L.BatchNormalization()(L.Conv2D(8, 3, 2, padding="same", use_bias=False)(inp))
    x = L.Lambda(hswish)(x)
    skip = x
    x = L.BatchNormalization()(L.DepthwiseConv2D(3, 2, padding="same", use_bias=False)(x))
    x = L.Lambda(hswish)(L.Conv2D(16, 1)(x))
    gate = L.Conv2D(16, 1, activation="sigmoid")(L.GlobalAveragePooling2D(keepdims=True)(x))
    x = L.Multiply()([x, gate])
    x = L.Conv2D(4, 1)(x)
    x = L.Lambda(lambda t: tf.compat.v1.image.resize_bilinear(t, (32, 32), align_corners=True))(x)
    centred = L.Lambda(lambda t: t - tf.reduce_mean(t, axis=[1, 2], keepdims=True))(skip)
    out = L.Add()([x, L.Conv2D(4, 1)(centred)])
    return tf.keras.Model(inp, out)


NETS = {
    "mbv1_96": mobilenet_v1,
    "mbv2_96": mobilenet_v2,
    "resnet8": resnet8,
    "ds_cnn": ds_cnn,
    "deeplab_head": deeplab_head,
    "lraspp_head": lraspp_head,
}


def build(name: str, seed: int = 0) -> bytes:
    import tensorflow as tf

    from .tflite_tools import convert_int8

    tf.keras.utils.set_random_seed(seed)
    model = NETS[name]()
    shape = (1,) + tuple(model.input_shape[1:])
    rng = np.random.default_rng(seed)
    calib = [rng.uniform(-1.0, 1.0, shape).astype(np.float32) for _ in range(16)]
    # BatchNorm statistics from the calibration images, so activations keep a sane range.
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(np.concatenate(calib), training=True)
    return convert_int8(model, lambda: ([x] for x in calib), tf.int8, tf.int8)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name in argv[1:] or list(NETS):
        buf = build(name)
        (out / f"{name}.tflite").write_bytes(buf)
        from tflite_micro.python.tflite_micro import runtime

        d = runtime.Interpreter.from_file(str(out / f"{name}.tflite"), arena_size=4_000_000).get_input_details(0)
        x = np.random.default_rng(1).integers(-128, 128, d["shape"]).astype(np.int8)
        np.save(out / f"{name}.input.npy", x)
        print(f"wrote {name}: {len(buf):,d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
