"""Keras model builders: the TinySeg Tiny U-Net and small "ops zoo" models.

The Tiny U-Net follows the TinySeg paper (Chae et al., LCTES 2024):
DoubleConv(8) -> Down(16) -> Down(32) -> Down(64) -> Up(32) -> Up(16) -> Up(8)
-> 1x1 conv + sigmoid, on an 80x120x3 input. Each Up stage is a 2x2 stride-2
transpose conv to half of the stage's channels, a pad of the upsampled tensor
to the skip tensor's size computed from run-time shapes (PyTorch U-Net style),
a channel concatenation [skip, upsampled] and a DoubleConv.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

UNET_INPUT_SHAPE: tuple[int, int, int] = (80, 120, 3)


class PadToMatch(layers.Layer):
    """Zero-pad ``upsampled`` (NHWC) to the spatial size of ``skip``.

    The padding is computed from ``tf.shape`` at run time (diffY/diffX split
    in two halves) as in the PyTorch U-Net reference code.
    """

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        skip, upsampled = inputs
        diff_y = tf.shape(skip)[1] - tf.shape(upsampled)[1]
        diff_x = tf.shape(skip)[2] - tf.shape(upsampled)[2]
        paddings = [
            [0, 0],
            [diff_y // 2, diff_y - diff_y // 2],
            [diff_x // 2, diff_x - diff_x // 2],
            [0, 0],
        ]
        return tf.pad(upsampled, paddings)

    def compute_output_shape(self, input_shape):  # type: ignore[override]
        skip_shape, up_shape = input_shape
        return tuple(skip_shape[:3]) + (up_shape[3],)


def double_conv(x: tf.Tensor, channels: int, name: str) -> tf.Tensor:
    """[3x3 conv (same, no bias) -> BatchNorm -> ReLU] x 2."""
    for i in (1, 2):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def down(x: tf.Tensor, channels: int, name: str) -> tf.Tensor:
    """2x2 max pool followed by DoubleConv."""
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return double_conv(x, channels, name)


def up(x: tf.Tensor, skip: tf.Tensor, channels: int, name: str) -> tf.Tensor:
    """Transpose conv to channels//2, pad to skip size, concat [skip, up], DoubleConv."""
    u = layers.Conv2DTranspose(channels // 2, 2, strides=2, name=f"{name}_upconv")(x)
    u = PadToMatch(name=f"{name}_pad")([skip, u])
    x = layers.Concatenate(axis=-1, name=f"{name}_concat")([skip, u])
    return double_conv(x, channels, name)


def build_tiny_unet(batch_size: int | None = None, name: str = "tiny_unet") -> keras.Model:
    """The TinySeg Tiny U-Net (about 110 k parameters), sigmoid output HxWx1.

    ``batch_size=None`` keeps a dynamic batch dimension so that the converter
    cannot fold the run-time shape computations away.
    """
    inp = keras.Input(UNET_INPUT_SHAPE, batch_size=batch_size, name="image")
    x1 = double_conv(inp, 8, "inc")
    x2 = down(x1, 16, "down1")
    x3 = down(x2, 32, "down2")
    x4 = down(x3, 64, "down3")
    x = up(x4, x3, 32, "up1")
    x = up(x, x2, 16, "up2")
    x = up(x, x1, 8, "up3")
    out = layers.Conv2D(1, 1, activation="sigmoid", name="outc")(x)
    return keras.Model(inp, out, name=name)


def build_ops_zoo_a(size: int = 24) -> keras.Model:
    """Image-to-image zoo model (batch 1, static shapes).

    Targets: DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, ADD (+fused RELU), MUL
    (squeeze-excite broadcast and same-shape), MEAN, LEAKY_RELU, standalone
    RELU and RELU6, RESIZE_NEAREST_NEIGHBOR, CONCATENATION with requantised
    inputs (QUANTIZE), CONV_2D with fused RELU / RELU6, LOGISTIC.
    """
    inp = keras.Input((size, size, 3), batch_size=1, name="image")
    a = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    b = layers.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw")(a)
    c = layers.Conv2D(8, 1, name="proj")(a)
    s = layers.Add(name="add")([b, c])
    s = layers.ReLU(name="add_relu")(s)  # fused into ADD
    # squeeze-excite: MEAN -> 1x1 conv relu -> 1x1 conv sigmoid -> MUL (broadcast)
    g = layers.GlobalAveragePooling2D(keepdims=True, name="se_mean")(s)
    g = layers.Conv2D(4, 1, activation="relu", name="se_fc1")(g)
    g = layers.Conv2D(8, 1, activation="sigmoid", name="se_fc2")(g)
    s = layers.Multiply(name="se_mul")([s, g])
    p = layers.MaxPooling2D(2, name="maxpool")(s)
    q = layers.AveragePooling2D(2, name="avgpool")(s)
    q = layers.LeakyReLU(negative_slope=0.1, name="leaky")(q)
    r = layers.Multiply(name="mul_same")([p, q])
    r = layers.Conv2D(8, 3, padding="same", activation="relu6", name="mid")(r)
    r = layers.Resizing(size, size, interpolation="nearest", name="resize_nearest")(r)
    r = layers.ReLU(max_value=6.0, name="relu6_standalone")(r)
    # a conv between RELU6 and the concat: TFLite Micro's int8 RELU6 only clamps
    # (it assumes equal input/output scales), so the concat must not impose a
    # different scale on the RELU6 output
    r = layers.Conv2D(8, 1, name="post")(r)
    # a sigmoid output has a fixed int8 scale (1/256), so the converter must
    # requantise concat inputs (QUANTIZE int8 -> int8) to one common scale
    gate = layers.Conv2D(2, 1, activation="sigmoid", name="gate")(a)
    r = layers.Concatenate(name="concat")([r, inp, gate, a])
    r = layers.ReLU(name="relu_standalone")(r)
    out = layers.Conv2D(4, 1, name="head")(r)
    return keras.Model(inp, out, name="ops_zoo_a")


def build_ops_zoo_b(size: int = 16, classes: int = 5) -> keras.Model:
    """Image classifier zoo model (batch 1, static shapes, float output).

    Targets: PAD, MEAN, RESHAPE, FULLY_CONNECTED, ADD, SOFTMAX and the final
    DEQUANTIZE for a float32 output.
    """
    inp = keras.Input((size, size, 3), batch_size=1, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu6", name="stem")(inp)
    x = layers.ZeroPadding2D(((1, 2), (2, 1)), name="pad")(x)
    x = layers.Conv2D(12, 3, strides=2, activation="relu", name="conv_s2")(x)
    g = layers.GlobalAveragePooling2D(name="mean_hw")(x)
    f = layers.AveragePooling2D(2, name="avgpool")(x)
    f = layers.Flatten(name="flatten")(f)
    f = layers.Dense(classes, name="fc_flat")(f)
    g = layers.Dense(classes, name="fc_mean")(g)
    z = layers.Add(name="add_logits")([f, g])
    out = layers.Softmax(name="softmax")(z)
    return keras.Model(inp, out, name="ops_zoo_b")
