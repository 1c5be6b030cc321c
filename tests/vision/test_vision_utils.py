"""tinygrad_cnn.vision.utils.make_grid, against torchvision's documented layout worked out by hand."""
import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.vision.utils import make_grid


def test_grid_layout_padding_and_pad_value():
    images = Tensor(np.arange(1, 4, dtype=np.float32).reshape(3, 1, 1, 1) * np.ones((1, 1, 2, 2), np.float32))
    grid = make_grid(images, nrow=2, padding=1, pad_value=0.5)
    # two columns, two rows of (2 + 1) pixels, plus one pixel of padding: 7 x 7; grey repeated to RGB
    assert grid.shape == (3, 7, 7)
    expected = np.full((7, 7), 0.5, dtype=np.float32)
    expected[1:3, 1:3], expected[1:3, 4:6], expected[4:6, 1:3] = 1, 2, 3
    for channel in grid.data:
        np.testing.assert_array_equal(channel, expected)
    assert make_grid(images, padding=0).shape == (3, 2, 6)   # nrow 8 > 3 images: one row


def test_normalize_value_range_and_scale_each():
    images = Tensor(np.array([[[[0.0, 4.0]]], [[[2.0, 10.0]]]], dtype=np.float32))   # two 1x1x2 images
    whole = make_grid(images, padding=0, normalize=True).data[0]
    np.testing.assert_allclose(whole, [[0.0, 0.4, 0.2, 1.0]])                      # min 0, max 10 overall
    each = make_grid(images, padding=0, normalize=True, scale_each=True).data[0]
    np.testing.assert_allclose(each, [[0.0, 1.0, 0.0, 1.0]])                       # each image its own range
    clamped = make_grid(images, padding=0, normalize=True, value_range=(2.0, 6.0)).data[0]
    np.testing.assert_allclose(clamped, [[0.0, 0.5, 0.0, 1.0]])
    np.testing.assert_array_equal(images.data[1, 0, 0], [2.0, 10.0])              # input untouched
    with pytest.raises(ValueError, match="value_range"):
        make_grid(images, normalize=True, value_range=3)


def test_a_single_image_and_a_list_of_images():
    image = Tensor(np.ones((3, 2, 2), dtype=np.float32))
    assert make_grid(image).shape == (3, 2, 2)                       # returned without padding
    assert make_grid(Tensor(np.ones((2, 2), np.float32))).shape == (3, 2, 2)
    assert make_grid([image, image], padding=1).shape == (3, 4, 7)
