"""``python -m tinygrad_cnn.kernels``: which kernel set this thread would use, and how the fast
convolution kernels compute each convolution layer of the built-in nets (``models.seed_net`` and
``models.lenet``) at the benchmark's batch of 64 images of 28x28, or at ``--batch`` and ``--size``.

The layouts are chosen by fixed rules on the layer's shape (``conv_gemm.plan``), so a given layer is
computed the same way on every run; the rules and the measurements behind them are in
``conv_gemm.py``. A small layer's other method, banded matrices (``conv_banded.py``), is taken where
it was the faster when timed on this host (``tuning.py``): the output says which, from the choices
file, and times nothing itself.
"""
import argparse

from .. import models, no_grad, nn, zeros
from ..environment import EnvironmentVariableError
from ..ops.conv import ConvGeometry
from . import active, conv_gemm, tuning, use


def conv_layers(model, input_shape):
    """(name, input shape, weight shape, geometry) of each Conv2d of a Sequential ``model``."""
    found = []
    x = zeros(*input_shape)
    with no_grad(), use("reference"):  # shapes only: the plain kernels, which time nothing
        for index, layer in enumerate(model):
            if isinstance(layer, nn.Conv2d) and not isinstance(layer.padding, str) and layer.padding_mode == "zeros":
                geometry = ConvGeometry(kernel=tuple(layer.weight.shape[2:]), stride=tuple(layer.stride),
                                        padding=tuple(layer.padding), dilation=tuple(layer.dilation),
                                        groups=layer.groups)
                found.append((f"{index}: {layer!r}", x.shape, layer.weight.shape, geometry))
            x = layer(x)
    return found


def tuning_summary() -> str:
    """Where kernel choices timed on this host are kept, and how many there are for it."""
    if tuning.mode() == "fixed":
        return f"kernel choices: not timed ({tuning.MODE_VARIABLE}=fixed): every layer by the fixed rules"
    return (f"kernel choices timed on this host ({tuning.MODE_VARIABLE}=measure): {len(tuning.choices())} kept in "
            f"{tuning.path()}\n  for the host: {tuning.host()}")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinygrad_cnn.kernels", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=positive, default=64)
    parser.add_argument("--size", type=positive, default=28, help="image height and width (at least 12 for the seed net)")
    args = parser.parse_args(argv)
    try:
        kernels = active()
    except EnvironmentVariableError as error:  # a bad TINYGRAD_CNN_KERNELS: one line, no traceback
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(f"kernel set of this thread: {kernels.__name__.rsplit('.', 1)[-1]} (TINYGRAD_CNN_KERNELS)")
    print(f"columns per chunk: {conv_gemm.COLUMN_CHUNK_BYTES >> 20} MB (a large layer over shifted columns: room for "
          f"{conv_gemm.SHIFTED_CHUNK_SAMPLES} samples, up to {conv_gemm.SHIFTED_CHUNK_BYTES >> 20} MB); one GEMM per sample up to "
          f"{conv_gemm.PER_SAMPLE_MULTIPLY_ADDS:,} multiply-adds a sample "
          f"({conv_gemm.PER_SAMPLE_WEIGHT_GRAD_MULTIPLY_ADDS:,} for the weight gradient)")
    try:
        print(tuning_summary())
        shape = (args.batch, 1, args.size, args.size)
        for net in ("seed_net", "lenet"):
            try:
                layers = conv_layers(getattr(models, net)(shape[1:]), shape)
            except ValueError as error:  # images too small for the net: say so in one line
                parser.error(f"--size {args.size}: {net} cannot take {args.size}x{args.size} images ({error})")
            print(f"\n{net}, input {shape}:")
            for name, x_shape, w_shape, geometry in layers:
                print(f"  layer {name}, input {x_shape}")
                for part, how in conv_gemm.plan(x_shape, w_shape, geometry).items():
                    print(f"    {part}: {how}")
    except EnvironmentVariableError as error:  # a bad TINYGRAD_CNN_TUNING or choices file: one line
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
