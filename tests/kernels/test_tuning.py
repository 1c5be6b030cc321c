"""Kernel choices timed on the host and kept in a file (``tinygrad_cnn/kernels/tuning.py``): timed
once per question, kept per host, read back by later runs, never written over a file that is not
ours, and safe to make from several threads at once."""
import json
import threading
import time

import numpy as np
import pytest

from tinygrad_cnn.environment import EnvironmentVariableError
from tinygrad_cnn.kernels import conv_gemm, fast, reference, tuning
from tinygrad_cnn.ops.conv import ConvGeometry


@pytest.fixture
def choices_file(tmp_path, monkeypatch):
    """Timing on, choices kept in a file of this test's own."""
    file = tmp_path / "cache" / "kernel-choices.json"
    monkeypatch.setenv(tuning.MODE_VARIABLE, "measure")
    monkeypatch.setenv(tuning.FILE_VARIABLE, str(file))
    tuning.forget()
    yield file
    tuning.forget()


def counted(seconds: float, calls: list, name: str):
    def method():
        calls.append(name)
        time.sleep(seconds)
    return method


def test_a_choice_is_timed_once_kept_in_the_file_and_read_back(choices_file):
    calls = []
    methods = {"slow": counted(0.004, calls, "slow"), "fast": counted(0.0, calls, "fast")}
    assert tuning.choose("question 1", methods, fixed="slow") == "fast"
    assert calls.count("slow") == calls.count("fast") == 1 + tuning.ROUNDS  # a warm-up call each, then rounds
    content = json.loads(choices_file.read_text())
    entry = content["hosts"][tuning.host()]["question 1"]
    assert entry["method"] == "fast" and entry["ms"]["slow"] > entry["ms"]["fast"]
    calls.clear()
    assert tuning.choose("question 1", methods, fixed="slow") == "fast" and calls == []
    tuning.forget()  # as a new process would: from the file, without timing
    assert tuning.choose("question 1", methods, fixed="slow") == "fast" and calls == []
    assert tuning.choices()["question 1"]["method"] == "fast"


def test_choices_of_other_questions_and_hosts_are_kept(choices_file):
    choices_file.parent.mkdir(parents=True)
    other_host = {"question 1": {"method": "a", "ms": {}, "measured": "2026-01-01T00:00:00+00:00"}}
    choices_file.write_text(json.dumps({"format": tuning.FORMAT, "hosts": {"another host": other_host}}))
    methods = {"a": counted(0.003, [], "a"), "b": counted(0.0, [], "b")}
    tuning.choose("question 1", methods, fixed="a")
    tuning.choose("question 2", methods, fixed="a")
    hosts = json.loads(choices_file.read_text())["hosts"]
    assert hosts["another host"] == other_host
    assert set(hosts[tuning.host()]) == {"question 1", "question 2"}


def test_fixed_mode_times_nothing_and_writes_nothing(choices_file, monkeypatch):
    monkeypatch.setenv(tuning.MODE_VARIABLE, "fixed")
    calls = []
    assert tuning.choose("q", {"a": counted(0, calls, "a"), "b": counted(0, calls, "b")}, fixed="b") == "b"
    assert calls == [] and not choices_file.exists()


def test_a_bad_mode_is_refused_in_one_line_naming_the_variable(choices_file, monkeypatch):
    monkeypatch.setenv(tuning.MODE_VARIABLE, "fastest")
    with pytest.raises(EnvironmentVariableError, match=r"^TINYGRAD_CNN_TUNING='fastest': expected one of measure, fixed$"):
        tuning.choose("q", {"a": lambda: None}, fixed="a")


@pytest.mark.parametrize("data", [b"my notes, not JSON", b'{"format": "something else", "hosts": {}}', b"[1, 2]",
                                  b"\x89PNG\r\n\x1a\n\x00\xff binary"])
def test_a_file_that_is_not_ours_is_refused_and_left_as_it_is(choices_file, data):
    choices_file.parent.mkdir(parents=True)
    choices_file.write_bytes(data)
    with pytest.raises(EnvironmentVariableError) as error:
        tuning.choose("q", {"a": lambda: None, "b": lambda: None}, fixed="a")
    message = str(error.value)
    assert message.startswith(f"{choices_file}: not a tinygrad_cnn kernel-choices file") and "\n" not in message
    assert "TINYGRAD_CNN_TUNING_FILE" in message
    assert choices_file.read_bytes() == data


@pytest.mark.parametrize("section", ["a string", [1], {"q": "banded"}, {"q": {"method": ["banded"], "ms": {}}},
                                     {"q": {"method": "banded"}}, {"q": {"method": "banded", "ms": {"banded": "fast"}}}])
def test_a_file_damaged_by_hand_is_refused_in_one_line(choices_file, section):
    choices_file.parent.mkdir(parents=True)
    text = json.dumps({"format": tuning.FORMAT, "hosts": {tuning.host(): section}})
    choices_file.write_text(text)
    with pytest.raises(EnvironmentVariableError, match=r"a damaged kernel-choices file .*delete it") as error:
        tuning.choose("q", {"im2col": lambda: None, "banded": lambda: None}, fixed="im2col")
    assert "\n" not in str(error.value) and choices_file.read_text() == text


def test_a_method_that_raises_loses_and_is_not_timed_again(choices_file):
    calls = []

    def out_of_memory():
        calls.append("banded")
        raise MemoryError("Unable to allocate 256. GiB")

    methods = {"im2col": counted(0.0, calls, "im2col"), "banded": out_of_memory}
    assert tuning.choose("q", methods, fixed="im2col") == "im2col"
    assert calls.count("banded") == 1
    entry = tuning.choices()["q"]
    assert entry["ms"]["banded"] is None and entry["failed"]["banded"].startswith("MemoryError: Unable to allocate")
    calls.clear()
    assert tuning.choose("q", methods, fixed="im2col") == "im2col" and calls == []

    def broken():
        raise ValueError("the call itself is wrong")

    with pytest.raises(ValueError, match="the call itself is wrong"):  # the fixed method's error is the call's
        tuning.choose("q2", {"im2col": broken, "banded": lambda: None}, fixed="im2col")
    assert "q2" not in tuning.choices()


def test_a_folder_that_cannot_be_written_keeps_the_choices_in_memory_with_one_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(tuning.MODE_VARIABLE, "measure")
    monkeypatch.setenv(tuning.FILE_VARIABLE, str(blocker / "kernel-choices.json"))  # its folder is a file
    tuning.forget()
    calls = []
    methods = {"a": counted(0.003, calls, "a"), "b": counted(0.0, calls, "b")}
    with pytest.warns(RuntimeWarning, match="cannot (read|keep) kernel choices there") as warned:
        assert tuning.choose("q1", methods, fixed="a") == "b"
        assert tuning.choose("q2", methods, fixed="a") == "b"
    assert len(warned) == 1
    calls.clear()
    assert tuning.choose("q1", methods, fixed="a") == "b" and calls == []
    tuning.forget()


def test_a_file_that_cannot_be_read_is_never_written_over(choices_file):
    choices_file.parent.mkdir(parents=True)
    choices_file.mkdir()  # reading a folder fails as an unreadable file does
    with pytest.warns(RuntimeWarning, match="cannot read kernel choices there"):
        assert tuning.choose("q", {"a": counted(0.003, [], "a"), "b": lambda: None}, fixed="a") == "b"
    assert choices_file.is_dir() and not list(choices_file.parent.glob("*.tmp"))


def test_threads_choosing_at_once_leave_one_whole_file_with_every_choice(choices_file):
    errors = []

    def choose(index):
        try:
            for k in range(5):
                tuning.choose(f"thread {index}, question {k}", {"a": lambda: None, "b": lambda: None}, fixed="a")
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=choose, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(json.loads(choices_file.read_text())["hosts"][tuning.host()]) == 20
    assert not list(choices_file.parent.glob("*.tmp"))


def test_processes_adding_choices_at_once_lose_none(choices_file, tmp_path):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from tinygrad_cnn.kernels import tuning\n"
        "for k in range(40):\n"
        "    tuning.choose(f'process {sys.argv[1]}, question {k}', {'a': lambda: None, 'b': lambda: None}, fixed='a')\n"
    )
    env = {**__import__("os").environ, tuning.MODE_VARIABLE: "measure", tuning.FILE_VARIABLE: str(choices_file)}
    processes = [subprocess.Popen([sys.executable, "-c", script, str(index)], env=env) for index in range(3)]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    assert len(json.loads(choices_file.read_text())["hosts"][tuning.host()]) == 120


def test_a_choice_another_process_made_meanwhile_is_the_one_kept(choices_file):
    assert tuning.choices() == {}  # read before the other process wrote
    choices_file.parent.mkdir(parents=True, exist_ok=True)
    theirs = {"method": "slow", "ms": {"slow": 1.0, "fast": 2.0}, "measured": "2026-01-01T00:00:00+00:00"}
    choices_file.write_text(json.dumps({"format": tuning.FORMAT, "hosts": {tuning.host(): {"q": theirs}}}))
    assert tuning.choose("q", {"slow": counted(0.003, [], "slow"), "fast": lambda: None}, fixed="slow") == "slow"
    assert json.loads(choices_file.read_text())["hosts"][tuning.host()]["q"] == theirs
    assert tuning.choose("q", {"slow": lambda: None, "fast": lambda: None}, fixed="slow") == "slow"


def test_a_choice_made_before_a_method_was_added_is_timed_again_with_it(choices_file):
    calls = []
    assert tuning.choose("q", {"slow": counted(0.003, calls, "slow"), "fast": lambda: None}, fixed="slow") == "fast"
    methods = {"slow": counted(0.003, calls, "slow"), "fast": counted(0.002, calls, "fast"),
               "faster": counted(0.0, calls, "faster")}
    calls.clear()
    assert tuning.choose("q", methods, fixed="slow") == "faster" and calls.count("faster") == 1 + tuning.ROUNDS
    tuning.forget()  # as a new process would: from the file, without timing
    calls.clear()
    assert tuning.choose("q", methods, fixed="slow") == "faster" and calls == []
    assert set(json.loads(choices_file.read_text())["hosts"][tuning.host()]["q"]["ms"]) == {"slow", "fast", "faster"}


def test_a_layer_whose_band_would_not_pay_is_never_asked_about(choices_file):
    """A 1-wide kernel, or an output width with no divisor near the narrowest tile (a prime width),
    would make the band as wide as the row: some 2,000 times the multiply-adds, and a band of
    gigabytes. Such layers are not timed: im2col computes them."""
    rng = np.random.default_rng(0)
    for x_shape, w_shape in (((1, 1, 1, 10007), (8, 1, 1, 9)), ((1, 1, 1, 65521), (16, 1, 1, 1))):
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        geometry = ConvGeometry(kernel=w_shape[2:])
        np.testing.assert_allclose(fast.conv2d(x, w, geometry), reference.conv2d(x, w, geometry), rtol=1e-10, atol=1e-10)
    assert tuning.choices() == {}


def test_a_small_layer_is_timed_every_way_and_computed_by_the_choice(choices_file):
    """The seed net's second layer at a small batch: its forward and weight gradient are timed as
    im2col, as banded matrices and over shifted columns, the choice kept, and the result is the
    reference's whichever it is."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 24, 24)).astype(np.float32)
    w = rng.standard_normal((8, 8, 5, 5)).astype(np.float32)
    geometry = ConvGeometry(kernel=(5, 5))
    y = fast.conv2d(x, w, geometry)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dw = fast.conv2d_weight_grad(x, g, w.shape, geometry)
    np.testing.assert_allclose(y, reference.conv2d(x, w, geometry), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, reference.conv2d_weight_grad(x, g, w.shape, geometry), rtol=1e-4, atol=1e-3)
    kept = tuning.choices()
    assert sorted(question.split(":")[0] for question in kept) == ["conv2d", "conv2d_weight_grad"]
    for entry in kept.values():
        assert entry["method"] in ("im2col", "banded", "shifted") and set(entry["ms"]) == {"im2col", "banded", "shifted"}
    # a layer with many output channels is not asked about: im2col's GEMMs are fine there
    fast.conv2d(rng.standard_normal((4, 1, 28, 28)).astype(np.float32),
                rng.standard_normal((conv_gemm.BANDED_MAX_OUT_CHANNELS + 1, 1, 5, 5)).astype(np.float32), geometry)
    assert len(tuning.choices()) == 2


def test_an_input_with_an_infinity_is_never_given_to_the_banded_forward(choices_file, monkeypatch):
    """The band's zeros would meet it in other windows' sums (0 * inf = NaN)."""
    monkeypatch.setattr(conv_gemm, "FORCED_METHOD", "banded")
    x = np.ones((1, 1, 6, 6))
    x[0, 0, 0, 0] = np.inf
    y = fast.conv2d(x, np.ones((1, 1, 3, 3)), ConvGeometry(kernel=(3, 3)))
    np.testing.assert_array_equal(y, reference.conv2d(x, np.ones((1, 1, 3, 3)), ConvGeometry(kernel=(3, 3))))
    assert np.isinf(y[0, 0, 0, 0]) and np.isfinite(y[0, 0, 1:, 1:]).all()


def test_a_large_layers_weight_gradient_is_timed_over_shifted_columns_and_computed_by_the_choice(choices_file):
    """LeNet's second layer at a small batch: its weight gradient is timed over im2col's columns
    and over shifted columns, the choice kept, and the result is the reference's either way; a
    strided layer, which has no whole rows, is not asked about."""
    rng = np.random.default_rng(0)
    geometry = ConvGeometry(kernel=(3, 3), padding=(1, 1))
    x = rng.standard_normal((4, 32, 14, 14)).astype(np.float32)
    g = rng.standard_normal((4, 64, 14, 14)).astype(np.float32)
    dw = fast.conv2d_weight_grad(x, g, (64, 32, 3, 3), geometry)
    np.testing.assert_allclose(dw, reference.conv2d_weight_grad(x, g, (64, 32, 3, 3), geometry), rtol=1e-4, atol=1e-3)
    (question, entry), = tuning.choices().items()
    assert question.startswith("conv2d_weight_grad: input (4, 32, 14, 14)")
    assert entry["method"] in ("im2col", "shifted") and set(entry["ms"]) == {"im2col", "shifted"}
    strided = ConvGeometry(kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    fast.conv2d_weight_grad(x, g[:, :, :7, :7], (64, 32, 3, 3), strided)
    assert len(tuning.choices()) == 1


def test_an_input_with_an_infinity_is_never_given_to_the_shifted_weight_gradient(monkeypatch):
    """Along whole rows the last row of one sample runs on into the next sample's first: an inf
    there would meet the gradient's zeros at those extra positions (0 * inf = NaN) in the gradient
    of weights that never see it."""
    monkeypatch.setattr(conv_gemm, "FORCED_METHOD", "shifted")
    monkeypatch.setattr(conv_gemm, "PER_SAMPLE_MULTIPLY_ADDS", 0)
    geometry = ConvGeometry(kernel=(3, 3))
    x, g = np.ones((2, 1, 6, 6)), np.ones((2, 1, 4, 4))
    x[1, 0, 0, 0] = np.inf  # seen by kernel offset (0, 0) only
    dw = fast.conv2d_weight_grad(x, g, (1, 1, 3, 3), geometry)
    np.testing.assert_array_equal(dw, reference.conv2d_weight_grad(x, g, (1, 1, 3, 3), geometry))
    assert np.isinf(dw[0, 0, 0, 0]) and np.isfinite(dw.reshape(-1)[1:]).all()
    x[1, 0, 0, 0] = 1.0  # finite: the same weights by shifted columns
    np.testing.assert_array_equal(fast.conv2d_weight_grad(x, g, (1, 1, 3, 3), geometry), np.full((1, 1, 3, 3), 32.0))
