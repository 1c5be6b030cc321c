"""tinygrad_cnn.vision.transforms, each against torchvision's documented behaviour, with expected
values worked out by hand or with plain NumPy (torchvision itself is not a dependency)."""
import numpy as np
import pytest
from PIL import Image

from tinygrad_cnn import Tensor, manual_seed
from tinygrad_cnn.vision import transforms as T


def grey(height, width):
    """A uint8 PIL image whose pixel (r, c) holds 10 * r + c, so every position is recognisable."""
    return Image.fromarray((10 * np.arange(height)[:, None] + np.arange(width)).astype(np.uint8))


def test_to_tensor_makes_chw_float_in_unit_range():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    tensor = T.ToTensor()(Image.fromarray(rgb))
    assert tensor.shape == (3, 2, 3) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor.data, rgb.transpose(2, 0, 1) / 255, rtol=1e-6)
    assert T.ToTensor()(grey(2, 4)).shape == (1, 2, 4)
    np.testing.assert_array_equal(T.ToTensor()(rgb).data, tensor.data)               # an HWC array
    floats = np.full((2, 2), 7.5, dtype=np.float32)
    assert T.ToTensor()(floats).data.tolist() == [[[7.5, 7.5], [7.5, 7.5]]]           # not scaled
    binary = Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1")
    assert T.ToTensor()(binary).data.tolist() == [[[0.0, 1.0]]]
    with pytest.raises(TypeError, match="ToTensor"):
        T.ToTensor()([1, 2])


def test_normalize_per_channel():
    image = Tensor(np.stack([np.full((2, 2), 0.5), np.full((2, 2), 1.0)]).astype(np.float32))
    out = T.Normalize((0.5, 0.25), (0.5, 0.25))(image)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data[0], 0.0)
    np.testing.assert_allclose(out.data[1], 3.0)
    np.testing.assert_allclose(image.data[1], 1.0)   # not in place unless asked
    T.Normalize(0.5, 2.0, inplace=True)(image)
    np.testing.assert_allclose(image.data[1], 0.25)
    with pytest.raises(TypeError, match="ToTensor first"):
        T.Normalize(0.5, 0.5)(grey(2, 2))
    with pytest.raises(ValueError, match="zero"):
        T.Normalize(0.5, (1.0, 0.0))


def test_horizontal_flip_with_probability_p():
    image = grey(2, 3)
    flipped = T.RandomHorizontalFlip(p=1.0)(image)
    assert isinstance(flipped, Image.Image)
    np.testing.assert_array_equal(np.asarray(flipped), np.asarray(image)[:, ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(image) is image
    tensor = T.ToTensor()(image)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(tensor).data, tensor.data[..., ::-1])
    manual_seed(0)
    flips = sum(T.RandomHorizontalFlip()(tensor).data[0, 0, 0] != tensor.data[0, 0, 0] for _ in range(400))
    assert 150 < flips < 250


def test_random_crop_with_padding_is_a_window_of_the_padded_image_and_reaches_every_window():
    image = grey(3, 4)
    padded = np.pad(np.asarray(image), 1)
    seen = set()
    manual_seed(1)
    for _ in range(300):
        out = np.asarray(T.RandomCrop((3, 4), padding=1)(image))
        windows = [(top, left) for top in range(3) for left in range(3)
                   if (padded[top:top + 3, left:left + 4] == out).all()]
        assert windows
        seen.update(windows)
    assert seen == {(top, left) for top in range(3) for left in range(3)}


def test_padding_forms_and_modes_as_torchvision():
    row = Tensor(np.array([[[1.0, 2.0, 3.0]]]))
    assert T.pad(row, (2, 0), padding_mode="reflect").data.tolist() == [[[3, 2, 1, 2, 3, 2, 1]]]
    assert T.pad(row, (2, 0), padding_mode="symmetric").data.tolist() == [[[2, 1, 1, 2, 3, 3, 2]]]
    assert T.pad(row, (1, 0), padding_mode="edge").data.tolist() == [[[1, 1, 2, 3, 3]]]
    assert T.pad(row, (1, 0, 0, 1), fill=9).data.tolist() == [[[9, 1, 2, 3], [9, 9, 9, 9]]]   # left, top, right, bottom
    rgb = Image.fromarray(np.zeros((1, 1, 3), dtype=np.uint8))
    coloured = np.asarray(T.pad(rgb, 1, fill=(10, 20, 30)))
    assert coloured.shape == (3, 3, 3) and coloured[0, 0].tolist() == [10, 20, 30] and coloured[1, 1].tolist() == [0, 0, 0]
    two_channels = T.pad(Tensor(np.ones((2, 1, 1))), (1, 0), fill=(5, 6)).data
    assert two_channels.tolist() == [[[5, 1, 5]], [[6, 1, 6]]]
    with pytest.raises(ValueError, match="fill values"):
        T.pad(rgb, 1, fill=(1, 2))
    crop = T.RandomCrop(4, pad_if_needed=True, fill=7)(row)
    assert crop.shape == (1, 4, 4) and (crop.data == 7).sum() == 13
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(5)(row)


def test_center_crop_offsets_round_as_torchvision():
    image = grey(5, 7)
    # top = round((5 - 2) / 2) = round(1.5) = 2, left = round((7 - 2) / 2) = round(2.5) = 2 (Python rounds to even)
    np.testing.assert_array_equal(np.asarray(T.CenterCrop(2)(image)), [[22, 23], [32, 33]])
    np.testing.assert_array_equal(np.asarray(T.CenterCrop((3, 1))(image)), [[13], [23], [33]])
    bigger = T.CenterCrop((4, 3))(Tensor(np.ones((1, 2, 2), dtype=np.float32)))
    # padded by (left, top, right, bottom) = (0, 1, 1, 1), then cropped at (0, 0)
    assert bigger.data[0].tolist() == [[0, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]]


def test_resize_output_size_rules():
    assert T.resized_size(20, 10, 5) == (10, 5)           # the shorter side becomes 5
    assert T.resized_size(10, 30, 4) == (4, 12)
    assert T.resized_size(7, 10, 5) == (5, 7)             # int(5 * 10 / 7) = 7, rounded down
    assert T.resized_size(10, 30, (6, 8)) == (6, 8)
    assert T.resized_size(10, 100, 5, max_size=20) == (2, 20)     # 5 x 50 capped: int(20 * 5 / 50) = 2
    resized = T.Resize(14)(grey(28, 56))
    assert isinstance(resized, Image.Image) and resized.size == (28, 14)


def test_bilinear_upsampling_of_a_tensor_follows_the_half_pixel_formula():
    pixels = np.array([[0.0, 1.0], [2.0, 5.0]], dtype=np.float32)
    out = T.Resize((4, 4))(Tensor(pixels[None])).data[0]
    # output pixel x samples the input at (x + 0.5) * 2 / 4 - 0.5, clamped to [0, 1]
    source = np.clip((np.arange(4) + 0.5) / 2 - 0.5, 0, 1)
    rows = (1 - source)[:, None] * pixels[0] + source[:, None] * pixels[1]
    expected = rows[:, [0]] * (1 - source) + rows[:, [1]] * source
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    nearest = T.Resize((4, 4), interpolation=T.InterpolationMode.NEAREST)(Tensor(pixels[None]))
    np.testing.assert_array_equal(nearest.data[0], pixels.repeat(2, 0).repeat(2, 1))


def test_compose_and_lambda():
    pipeline = T.Compose([T.CenterCrop(2), T.ToTensor(), T.Lambda(lambda t: t * 255)])
    np.testing.assert_allclose(pipeline(grey(4, 4)).data[0], [[11, 12], [21, 22]], rtol=1e-6)
    with pytest.raises(TypeError, match="callable"):
        T.Lambda(3)
