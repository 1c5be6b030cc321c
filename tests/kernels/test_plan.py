"""The GEMM layouts of the fast convolution kernels are chosen by fixed rules on the layer's shape,
and ``python -m tinygrad_cnn.kernels`` shows which one each layer of the built-in nets gets."""
import re
import subprocess
import sys
from pathlib import Path

from tinygrad_cnn.kernels import conv_gemm
from tinygrad_cnn.ops.conv import ConvGeometry

ROOT = Path(__file__).resolve().parents[2]


def test_small_layers_get_a_gemm_per_sample_and_large_ones_a_gemm_per_chunk():
    first_layer = conv_gemm.plan((64, 1, 28, 28), (8, 1, 5, 5), ConvGeometry(kernel=(5, 5)))
    assert first_layer["forward"].startswith("one GEMM per sample")
    wide = conv_gemm.plan((64, 16, 14, 14), (64, 16, 3, 3), ConvGeometry(kernel=(3, 3), padding=(1, 1)))
    assert wide["forward"].startswith("one GEMM per chunk (") and "whole padded rows" in wide["forward"]
    lenet_second = conv_gemm.plan((64, 32, 14, 14), (64, 32, 3, 3), ConvGeometry(kernel=(3, 3), padding=(1, 1)))
    assert lenet_second["input gradient"].startswith("a correlation")
    strided = conv_gemm.plan((8, 4, 16, 16), (4, 4, 3, 3), ConvGeometry(kernel=(3, 3), stride=(2, 2)))
    assert strided["input gradient"].endswith("col2im")


def test_layers_with_at_least_half_as_many_input_as_output_channels_copy_their_input_once_per_kernel_row():
    geometry = ConvGeometry(kernel=(3, 3), padding=(1, 1))
    square = conv_gemm.plan((32, 64, 32, 32), (64, 64, 3, 3), geometry)
    assert square["forward"].startswith("one GEMM per chunk with the kernel columns' weights stacked") and "shifted" in square["forward"]
    widening = conv_gemm.plan((64, 32, 14, 14), (64, 32, 3, 3), geometry)  # LeNet's second layer
    assert "shifted" in widening["forward"]  # 32 -> 64 channels
    assert "shifted" in widening["input gradient"]  # a correlation from 64 channels to 32
    wider = conv_gemm.plan((64, 16, 14, 14), (64, 16, 3, 3), geometry)
    assert "shifted" not in wider["forward"]  # 16 -> 64 channels: the sums would cost more than the copies
    strided = conv_gemm.plan((8, 64, 16, 16), (64, 64, 3, 3), ConvGeometry(kernel=(3, 3), stride=(2, 2)))
    assert "shifted" not in strided["forward"]  # whole rows need stride 1


def test_layers_whose_forward_takes_shifted_columns_may_take_them_for_their_weight_gradient():
    geometry = ConvGeometry(kernel=(3, 3), padding=(1, 1))
    lenet_second = conv_gemm.plan((64, 32, 14, 14), (64, 32, 3, 3), geometry)["weight gradient"]
    assert "; or shifted columns (a GEMM per chunk, the gradient stacked 3 times, for finite inputs)" in lenet_second
    assert "shifted" not in conv_gemm.plan((64, 16, 14, 14), (64, 16, 3, 3), geometry)["weight gradient"]
    assert "shifted" not in conv_gemm.plan((8, 64, 16, 16), (64, 64, 3, 3), ConvGeometry(kernel=(3, 3), stride=(2, 2)))["weight gradient"]
    grouped = conv_gemm.plan((8, 64, 16, 16), (64, 32, 3, 3), ConvGeometry(kernel=(3, 3), padding=(1, 1), groups=2))
    assert "shifted" not in grouped["weight gradient"]
    first = conv_gemm.plan((64, 1, 28, 28), (32, 1, 3, 3), ConvGeometry(kernel=(3, 3), padding=(1, 1)))  # LeNet's first
    assert not any("shifted" in how for how in first.values())  # 9 columns per position, 32 channels: no whole rows


def test_the_weight_gradient_puts_the_larger_of_its_dimensions_as_rows():
    many_inputs = conv_gemm.plan((64, 8, 24, 24), (8, 8, 5, 5), ConvGeometry(kernel=(5, 5)))
    assert many_inputs["weight gradient"].startswith("(K x")  # K = 200 > O = 8
    many_outputs = conv_gemm.plan((64, 1, 28, 28), (32, 1, 3, 3), ConvGeometry(kernel=(3, 3), padding=(1, 1)))
    assert many_outputs["weight gradient"].startswith("(O/G x")  # O = 32 > K = 9


def test_the_module_prints_the_plan_of_every_convolution_of_the_built_in_nets():
    done = subprocess.run([sys.executable, "-m", "tinygrad_cnn.kernels", "--batch", "8"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "seed_net, input (8, 1, 28, 28)" in done.stdout and "lenet, input (8, 1, 28, 28)" in done.stdout
    assert done.stdout.count("  layer ") == 4
    assert done.stdout.count("forward: ") == done.stdout.count("weight gradient: ") == 4


def test_the_module_refuses_bad_arguments_in_one_line():
    for args in (["--batch", "0"], ["--size", "6"]):
        done = subprocess.run([sys.executable, "-m", "tinygrad_cnn.kernels", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("python -m tinygrad_cnn.kernels: error: ")


def test_small_layers_name_banded_matrices_and_shifted_columns_as_their_other_methods_and_the_choice_kept(tmp_path, monkeypatch):
    from tinygrad_cnn.kernels import tuning

    monkeypatch.setenv(tuning.MODE_VARIABLE, "measure")
    monkeypatch.setenv(tuning.FILE_VARIABLE, str(tmp_path / "choices.json"))
    tuning.forget()
    seed_second = ((64, 8, 24, 24), (8, 8, 5, 5), ConvGeometry(kernel=(5, 5)))
    plan = conv_gemm.plan(*seed_second)
    assert plan["forward"].endswith("; or banded matrices (K = 560, 80 columns, 2 tile(s) a row), or shifted columns "
                                    "(a GEMM per chunk, the weights stacked 5 times), the faster on this host: "
                                    "timed at the layer's first use")
    assert "the gradient stacked 5 times, for finite inputs" in plan["weight gradient"]
    assert all("banded" in how and "shifted" in how for how in plan.values())
    lenet_second = conv_gemm.plan((64, 32, 14, 14), (64, 32, 3, 3), ConvGeometry(kernel=(3, 3), padding=(1, 1)))
    assert not any("banded" in how for how in lenet_second.values())  # 64 output channels: im2col only
    question = conv_gemm._question("conv2d", seed_second[0], "float32", seed_second[1], "float32", seed_second[2])
    tuning.choose(question, {"im2col": lambda: None, "banded": lambda: None, "shifted": lambda: None}, fixed="im2col")
    assert re.search(r"the faster on this host: (im2col|banded|shifted) \(banded [0-9.]+ ms, im2col [0-9.]+ ms, "
                     r"shifted [0-9.]+ ms\)$", conv_gemm.plan(*seed_second)["forward"])
    monkeypatch.setenv(tuning.MODE_VARIABLE, "fixed")
    assert conv_gemm.plan(*seed_second)["forward"].endswith("not timed (TINYGRAD_CNN_TUNING=fixed), im2col")
    tuning.forget()


def test_the_module_says_where_choices_are_kept_and_times_nothing_itself(tmp_path):
    import os

    file = tmp_path / "choices.json"
    env = {**os.environ, "TINYGRAD_CNN_TUNING": "measure", "TINYGRAD_CNN_TUNING_FILE": str(file)}
    done = subprocess.run([sys.executable, "-m", "tinygrad_cnn.kernels", "--batch", "8"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"kernel choices timed on this host (TINYGRAD_CNN_TUNING=measure): 0 kept in {file}" in done.stdout
    # the seed net's five small-layer kernels, and LeNet's second-layer weight gradient
    assert done.stdout.count("timed at the layer's first use") == 6
    assert not file.exists()
    bad = subprocess.run([sys.executable, "-m", "tinygrad_cnn.kernels"], cwd=ROOT, capture_output=True, text=True,
                         env={**env, "TINYGRAD_CNN_TUNING": "sometimes"}, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == ("python -m tinygrad_cnn.kernels: error: TINYGRAD_CNN_TUNING='sometimes': "
                                                   "expected one of measure, fixed")
