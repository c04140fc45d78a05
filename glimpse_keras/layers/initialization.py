"""Weight-initialisation schemes shared by the glimpse layers.

Glimpse Clouds was trained with PyTorch's default initialisers
(MODEL_SPEC.md section 11, item 21): every `nn.Linear` and `nn.GRU` weight and
bias is drawn from U(-1/sqrt(fan), +1/sqrt(fan)), where `fan` is the input size
of a Linear layer and the hidden size of a GRU. Keras defaults differ (Glorot
kernels, orthogonal recurrent kernels, zero biases). Every glimpse layer takes
`initialization="torch" | "keras"` and asks this module for its initialisers.
"""

import math

import keras

INITIALIZATION_STYLES = ("torch", "keras")


@keras.saving.register_keras_serializable(package="glimpse_keras")
class AbsRandomNormal(keras.initializers.RandomNormal):
    """|N(mean, stddev)| samples: the authors' initialisation of the memory prior.

    Subclasses `RandomNormal` so that an unseeded instance draws a fixed
    per-instance seed and never touches the global seed generator (which
    cannot be advanced while Keras traces a model symbolically).
    """

    def __call__(self, shape, dtype=None):
        return keras.ops.abs(super().__call__(shape, dtype=dtype))


def check_initialization(initialization):
    """Validates an `initialization` argument.

    Args:
        initialization: str, one of `INITIALIZATION_STYLES`.

    Returns:
        The validated string.

    Raises:
        ValueError: naming the received value if it is not a known style.
    """
    if initialization not in INITIALIZATION_STYLES:
        raise ValueError(
            f"`initialization` must be one of {INITIALIZATION_STYLES}, "
            f"received initialization={initialization!r}."
        )
    return initialization


def torch_uniform(fan):
    """PyTorch's default U(-1/sqrt(fan), 1/sqrt(fan)) initialiser.

    Args:
        fan: int > 0, the fan that sets the bound (input size of a Linear layer,
            hidden size of a GRU).

    Returns:
        A `keras.initializers.RandomUniform` with bounds +-1/sqrt(fan).
    """
    bound = 1.0 / math.sqrt(float(fan))
    return keras.initializers.RandomUniform(minval=-bound, maxval=bound)


def dense_initializers(initialization, fan_in):
    """Kernel and bias initialisers of a fully connected layer.

    Args:
        initialization: "torch" (U(+-1/sqrt(fan_in)) for both) or "keras"
            (Glorot uniform kernel, zero bias).
        fan_in: int, input size of the layer.

    Returns:
        (kernel_initializer, bias_initializer).
    """
    if check_initialization(initialization) == "torch":
        return torch_uniform(fan_in), torch_uniform(fan_in)
    return keras.initializers.GlorotUniform(), keras.initializers.Zeros()


def gru_initializers(initialization, units):
    """Input-kernel, recurrent-kernel and bias initialisers of a GRU.

    Args:
        initialization: "torch" (all U(+-1/sqrt(units))) or "keras" (Glorot
            uniform input kernel, orthogonal recurrent kernel, zero biases).
        units: int, hidden size of the GRU.

    Returns:
        (kernel_initializer, recurrent_initializer, bias_initializer).
    """
    if check_initialization(initialization) == "torch":
        return torch_uniform(units), torch_uniform(units), torch_uniform(units)
    return (
        keras.initializers.GlorotUniform(),
        keras.initializers.Orthogonal(),
        keras.initializers.Zeros(),
    )
