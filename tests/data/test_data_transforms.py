"""Batch transforms: shapes, values, one random choice per image, determinism."""
import numpy as np
import pytest

from tinygrad_cnn.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat
from tinygrad_cnn.random import manual_seed


def batch(count=6, channels=3, size=8, seed=0):
    return np.random.default_rng(seed).random((count, channels, size, size), dtype=np.float32)


def test_normalize_per_channel():
    images = batch(channels=2)
    out = Normalize(mean=[0.5, 0.25], std=[0.5, 2.0])(images)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], (images[:, 0] - 0.5) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(out[:, 1], (images[:, 1] - 0.25) / 2.0, rtol=1e-6)


def test_normalize_single_image_and_channel_mismatch():
    image = batch(count=1)[0]
    assert Normalize([0.1, 0.2, 0.3], [1, 1, 1])(image).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="2 means"):
        Normalize([0.1, 0.2], [1, 1])(image)


def test_to_float_scales_uint8():
    out = ToFloat()(np.full((1, 1, 2, 2), 255, np.uint8))
    assert out.dtype == np.float32 and out.max() == 1.0


def test_flip_probability_extremes():
    images = batch()
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(images), images[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(images), images)


def test_flip_decides_per_image_and_repeats_with_the_seed():
    images = batch(count=40)
    out = RandomHorizontalFlip(rng=np.random.default_rng(1))(images)
    flipped = [np.array_equal(o, i[..., ::-1]) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 5 < sum(flipped) < 35
    np.testing.assert_array_equal(out, RandomHorizontalFlip(rng=np.random.default_rng(1))(images))


def test_crop_without_padding_to_full_size_is_identity():
    images = batch()
    np.testing.assert_array_equal(RandomCrop(8)(images), images)


def test_each_crop_is_a_window_of_the_padded_image():
    images = batch(count=20)
    out = RandomCrop(8, padding=2, rng=np.random.default_rng(4))(images)
    assert out.shape == (20, 3, 8, 8)
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for n in range(20):
        matches = [(top, left) for top in range(5) for left in range(5)
                   if np.array_equal(out[n], padded[n, :, top:top + 8, left:left + 8])]
        assert matches, f"crop {n} is not a window of its padded image"
        offsets.add(matches[0])
    assert len(offsets) > 3   # different images get different offsets


def test_rectangular_crop_and_too_large_crop():
    assert RandomCrop((4, 6))(batch()).shape == (6, 3, 4, 6)
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(9)(batch())


def test_library_generator_makes_augmentation_repeat():
    augment = Compose([RandomCrop(8, padding=3), RandomHorizontalFlip()])
    images = batch(count=16)
    manual_seed(7)
    first = augment(images)
    manual_seed(7)
    np.testing.assert_array_equal(augment(images), first)
    assert not np.array_equal(augment(images), first)


def test_compose_applies_in_order():
    images = batch()
    out = Compose([Normalize(0.5, 0.5), RandomHorizontalFlip(p=1.0)])(images)
    np.testing.assert_allclose(out, ((images - 0.5) / 0.5)[..., ::-1], rtol=1e-6)


def test_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        RandomHorizontalFlip()(np.zeros((4, 4)))
