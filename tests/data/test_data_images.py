"""Reading one image file (data/images.py): every Pillow mode scaled to [0, 1], channels, resizing,
.npy arrays, and files that are not what they claim (bombs, lies, non-images)."""
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn.data import DatasetError
from tinygrad_cnn.data.images import MAX_IMAGE_PIXELS, MAX_PIXELS_ENV_VAR, read_image
from tinygrad_cnn.environment import EnvironmentVariableError

Image = pytest.importorskip("PIL.Image")

# ---- every mode, written by Pillow into a real file, read back --------------------------------
# Each case: (mode, file suffix, make(rng) -> (Pillow image, expected grey or RGB values in [0, 1])).
# The expected values come from the stored numbers and the rule of the module docstring, never
# from the reader itself.


def _bilevel(rng):
    bits = rng.random((5, 7)) < 0.5
    return Image.fromarray(bits), bits.astype(np.float64)


def _grey(rng):
    pixels = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    return Image.fromarray(pixels), pixels / 255


def _palette(rng):
    palette = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    index = rng.integers(0, 4, (5, 7), dtype=np.uint8)
    image = Image.new("P", (7, 5))
    image.putpalette(palette.ravel().tolist())
    image.putdata(index.ravel().tolist())
    return image, palette[index] / 255


def _rgb(rng):
    pixels = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    return Image.fromarray(pixels), pixels / 255


def _rgba(rng):
    pixels = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)   # alpha is dropped, not composited
    return Image.fromarray(pixels), pixels[:, :, :3] / 255


def _cmyk(rng):
    inks = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    image = Image.frombytes("CMYK", (7, 5), inks.tobytes())
    cyan_magenta_yellow, black = inks[:, :, :3] / 255, inks[:, :, 3:] / 255
    return image, (1 - cyan_magenta_yellow) * (1 - black)   # subtractive inks; Pillow rounds to 8 bits


def _sixteen_bit(rng):
    values = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    values[0, :3] = [0, 32768, 65535]   # 32768 must read as about 0.5, not as 1.0 (clipped at 255)
    return Image.fromarray(values), values / 65535


def _thirty_two_bit(rng):
    values = rng.integers(0, 65536, (5, 7)).astype(np.int32)
    return Image.fromarray(values), values / 65535


def _float(rng):
    values = rng.uniform(-0.5, 1.5, (5, 7)).astype(np.float32)
    return Image.fromarray(values), np.clip(values, 0, 1)


MODES = [("1", ".png", _bilevel), ("L", ".png", _grey), ("P", ".png", _palette), ("RGB", ".png", _rgb),
         ("RGBA", ".png", _rgba), ("CMYK", ".tif", _cmyk), ("I;16", ".png", _sixteen_bit),
         ("I", ".tif", _thirty_two_bit), ("F", ".tif", _float)]
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("mode, suffix, make", MODES, ids=[mode for mode, _, _ in MODES])
def test_every_mode_is_scaled_to_unit_range(tmp_path, mode, suffix, make):
    image, expected = make(np.random.default_rng(len(mode)))
    path = tmp_path / f"picture{suffix}"
    image.save(path)
    with Image.open(path) as reopened:
        assert reopened.mode == mode   # the file really holds this mode
    colour = expected if expected.ndim == 3 else np.repeat(expected[:, :, None], 3, axis=2)
    grey = expected if expected.ndim == 2 else colour @ GREY_WEIGHTS
    rgb_read, grey_read = read_image(path, channels=3), read_image(path, channels=1)
    assert rgb_read.dtype == grey_read.dtype == np.float32
    assert rgb_read.shape == (3, 5, 7) and grey_read.shape == (1, 5, 7)
    assert 0 <= rgb_read.min() and rgb_read.max() <= 1
    # 8-bit sources are rounded to whole 8-bit steps by Pillow's conversions (half a step, plus
    # CMYK's own rounding); 16-bit and float sources are scaled exactly, to float32 precision.
    tolerance = 1e-6 if mode in ("I;16", "I", "F") else 1 / 255
    np.testing.assert_allclose(rgb_read, colour.transpose(2, 0, 1), atol=tolerance)
    np.testing.assert_allclose(grey_read[0], grey, atol=tolerance)


def test_sixteen_bit_half_is_half(tmp_path):
    Image.fromarray(np.array([[32768, 65535, 0]], dtype=np.uint16)).save(tmp_path / "half.png")
    np.testing.assert_allclose(read_image(tmp_path / "half.png", channels=1)[0, 0],
                               [32768 / 65535, 1, 0], rtol=1e-6)


def test_integer_image_beyond_sixteen_bits_is_refused(tmp_path):
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(tmp_path / "wide.tif")
    with pytest.raises(DatasetError, match=r"wide\.tif holds 32-bit integer values from 0 to 70000"):
        read_image(tmp_path / "wide.tif")


def test_float_image_with_nan_is_refused(tmp_path):
    Image.fromarray(np.array([[0.5, np.nan]], dtype=np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(DatasetError, match=r"nan\.tif is a float image with NaN"):
        read_image(tmp_path / "nan.tif")


def test_resizing_keeps_a_constant_image_constant(tmp_path):
    Image.fromarray(np.full((40, 30), 51, np.uint8)).save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png", channels=3, size=(8, 6))
    assert image.shape == (3, 8, 6)
    np.testing.assert_allclose(image, 0.2, atol=1e-6)


# ---- .npy arrays ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["HW", "HWC", "CHW", "1CHW"])
def test_npy_layouts(tmp_path, layout):
    grey = np.random.default_rng(0).random((6, 5)).astype(np.float32)
    array = {"HW": grey, "HWC": grey[:, :, None], "CHW": grey[None], "1CHW": grey[None, None]}[layout]
    np.save(tmp_path / "a.npy", array)
    np.testing.assert_allclose(read_image(tmp_path / "a.npy", channels=1)[0], grey, rtol=1e-6)
    np.save(tmp_path / "b.npy", (grey * 255).astype(np.uint8))
    np.testing.assert_allclose(read_image(tmp_path / "b.npy", channels=1)[0], grey, atol=1 / 255)


def test_npy_colour_to_grey_uses_luma(tmp_path):
    rgb = np.random.default_rng(1).random((4, 4, 3)).astype(np.float32)
    np.save(tmp_path / "rgb.npy", rgb)
    np.testing.assert_allclose(read_image(tmp_path / "rgb.npy", channels=1)[0], rgb @ GREY_WEIGHTS, rtol=1e-5)


@pytest.mark.parametrize("content, pattern", [
    (np.zeros((2, 3, 4, 5)), r"must be \(H, W\), \(H, W, C\) or \(C, H, W\)"),
    (np.array(["a", "b"]), r"must be \(H, W\)"),
    (np.full((2, 2), "text"), "holds integers or floats"),
    (np.array([[np.inf, 0.0]]), "NaN or infinite"),
])
def test_npy_that_is_no_image(tmp_path, content, pattern):
    np.save(tmp_path / "bad.npy", content)
    with pytest.raises(DatasetError, match=pattern):
        read_image(tmp_path / "bad.npy")


def test_pickled_npy_is_not_loaded(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match=r"cannot read .*objects\.npy as a \.npy array"):
        read_image(tmp_path / "objects.npy")


def test_npy_header_claiming_more_than_the_file_holds(tmp_path):
    # The header says 9000 x 9000 floats (324 MB); the file holds 64 bytes of them. The header is
    # padded to a fixed length, so the longer shape fits in place of the short one.
    path = tmp_path / "liar.npy"
    np.save(path, np.zeros((4, 4), np.float32))
    path.write_bytes(path.read_bytes().replace(b"'shape': (4, 4), ", b"'shape': (9000, 9000), "))
    with pytest.raises(DatasetError, match=r"cannot read .*liar\.npy"):
        read_image(path, max_pixels=10**9)


# ---- files that are not images ----------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"plain text, not a picture", b"\x89PNG\r\n\x1a\n" + bytes(40)])
def test_non_image_names_the_file(tmp_path, content):
    (tmp_path / "photo.png").write_bytes(content)
    with pytest.raises(DatasetError, match=r"cannot read image .*photo\.png"):
        read_image(tmp_path / "photo.png")


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"nowhere\.png"):
        read_image(tmp_path / "nowhere.png")


# ---- bombs: refused from the header, with the peak memory measured ------------------------------


def png_bytes(width, height, idat_limit=None):
    """A grey 8-bit PNG written from the specification (not by Pillow): every row filter 0 and
    zeros, streamed through zlib so that even a 64-megapixel file costs little to write;
    ``idat_limit`` rows of data at most (a header that claims more than the data holds)."""
    compressor, parts = zlib.compressobj(9), []
    row = bytes(1 + width)
    for _ in range(height if idat_limit is None else min(height, idat_limit)):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(parts))
            + png_chunk(b"IEND", b""))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def jpeg_claiming(tmp_path, width, height):
    """A real small JPEG whose frame header (SOF0) is patched to claim ``width`` x ``height``."""
    path = tmp_path / "small.jpg"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path, format="JPEG")
    content = bytearray(path.read_bytes())
    frame = content.index(b"\xff\xc0")   # marker, length (2), precision (1), height (2), width (2)
    content[frame + 5:frame + 9] = struct.pack(">HH", height, width)
    return bytes(content)


# The peak resident memory of the process (Linux's VmHWM, which starts afresh at exec; the rusage
# figure elsewhere, though on Linux it may carry the peak of the process that started this one),
# and tracemalloc's peak of Python and NumPy allocations, for each file read after a warm-up.
MEASURE = """
import json, resource, sys, tracemalloc
from pathlib import Path
from tinygrad_cnn.data.images import read_image

def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

read_image(Path(sys.argv[1]))   # a warm-up: Pillow imports its format plugins on first use
results = {}
for path in sys.argv[2:]:
    before = peak_kib()
    tracemalloc.start()
    try:
        read_image(Path(path), channels=3, size=(28, 28))
        outcome = "read"
    except Exception as error:
        outcome = f"{type(error).__name__}: {error}"
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    growth = peak_kib() - before
    results[Path(path).name] = {"outcome": outcome, "traced_kib": traced // 1024, "rss_growth_kib": growth}
print(json.dumps(results))
"""


def test_image_bombs_are_refused_before_decoding(tmp_path):
    files = {
        # 8000 x 8000 = 64 million pixels, above our limit (50 million) and below Pillow's own
        # check: a valid file of 63 KB whose decoding would take 64 MB (768 MB as RGB float32).
        "valid-64-megapixels.png": png_bytes(8000, 8000),
        # 20000 x 20000 = 400 million pixels: Pillow's decompression-bomb check refuses it at open.
        "header-400-megapixels.png": png_bytes(20000, 20000, idat_limit=10),
        # A JPEG frame header claiming 9000 x 7000 over 8 x 8 pixels of data.
        "claims-63-megapixels.jpg": jpeg_claiming(tmp_path, 9000, 7000),
        # The control, read last (a peak only grows): 2000 x 2000 is within the limit and is
        # decoded, which must show in the measures, or they could not see a bomb either.
        "control-4-megapixels.png": png_bytes(2000, 2000),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "warm-up.png")
    environment = {key: value for key, value in os.environ.items() if key != MAX_PIXELS_ENV_VAR}
    package_parent = str(Path(tinygrad_cnn.__file__).parents[1])   # importable from any folder
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, environment.get("PYTHONPATH")]))
    paths = [str(tmp_path / name) for name in ("warm-up.png", *files)]
    run = subprocess.run([sys.executable, "-c", MEASURE, *paths], capture_output=True, text=True,
                         env=environment, timeout=120)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    for name, result in results.items():
        print(f"{name}: rss growth {result['rss_growth_kib']} KiB, traced peak {result['traced_kib']} KiB; "
              f"{result['outcome']}")
    control = results.pop("control-4-megapixels.png")
    assert control["outcome"] == "read"
    assert control["rss_growth_kib"] > 30 * 1024 and control["traced_kib"] > 30 * 1024   # 48 MB as RGB float32
    for name, result in results.items():
        assert result["outcome"].startswith("DatasetError") and name in result["outcome"]
        assert result["rss_growth_kib"] < 8 * 1024 and result["traced_kib"] < 1024   # plugin imports included
    assert f"more than the limit of {MAX_IMAGE_PIXELS:,}" in results["valid-64-megapixels.png"]["outcome"]
    assert MAX_PIXELS_ENV_VAR in results["valid-64-megapixels.png"]["outcome"]
    assert "decompression-bomb" in results["header-400-megapixels.png"]["outcome"]
    assert "9000x7000 = 63,000,000 pixels" in results["claims-63-megapixels.jpg"]["outcome"]


def test_bomb_in_a_text_chunk_is_a_dataset_error(tmp_path, traced_peak):
    # A 4x4 PNG with a compressed comment (zTXt) of 20 MB of zeros: Pillow stops decompressing
    # text at PngImagePlugin.MAX_TEXT_CHUNK (1 MB), and the reader names the file.
    comment = b"Comment\x00\x00" + zlib.compress(bytes(20 << 20), 9)
    content = png_bytes(4, 4)
    image_data = content.index(b"IDAT") - 4
    (tmp_path / "comment.png").write_bytes(content[:image_data] + png_chunk(b"zTXt", comment) + content[image_data:])
    peak, error = traced_peak(lambda: read_image(tmp_path / "comment.png"))
    assert isinstance(error, DatasetError) and "cannot read image" in str(error) and "comment.png" in str(error)
    assert peak < 8 << 20


def test_pixel_limit_is_set_per_call_or_by_environment(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(DatasetError, match=r"small\.png is 30x20 = 600 pixels, more than the limit of 599"):
        read_image(tmp_path / "small.png", max_pixels=599)
    assert read_image(tmp_path / "small.png", max_pixels=600).shape == (3, 20, 30)
    monkeypatch.setenv(MAX_PIXELS_ENV_VAR, "100")
    with pytest.raises(DatasetError, match="limit of 100"):
        read_image(tmp_path / "small.png")
    monkeypatch.setenv(MAX_PIXELS_ENV_VAR, "a lot")  # a bad setting, not a bad image: the variable is named
    with pytest.raises(EnvironmentVariableError, match=rf"{MAX_PIXELS_ENV_VAR}='a lot' is not a positive whole number"):
        read_image(tmp_path / "small.png")
