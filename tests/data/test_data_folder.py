"""ImageFolder on a few generated PNG and JPEG files."""
import numpy as np
import pytest

from tinygrad_cnn.data import DatasetError, ImageDataset, ImageFolder
from tinygrad_cnn.data.transforms import RandomHorizontalFlip

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def folder(tmp_path):
    """Classes created out of alphabetical order; PNGs (lossless) and one JPEG; one stray file."""
    rng = np.random.default_rng(0)
    pixels = {}
    for class_name, count in [("zebra", 2), ("ant", 3)]:
        (tmp_path / class_name).mkdir()
        for number in range(count):
            array = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)   # 5 rows, 4 columns
            path = tmp_path / class_name / f"{number}.png"
            Image.fromarray(array).save(path)
            pixels[path.name, class_name] = array
    Image.fromarray(np.full((5, 4, 3), 200, np.uint8)).save(tmp_path / "zebra" / "2.JPG", format="JPEG")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    return tmp_path, pixels


def test_classes_sorted_and_samples_found(folder):
    root, _ = folder
    dataset = ImageFolder(root)
    assert dataset.classes == ["ant", "zebra"]
    assert dataset.class_to_idx == {"ant": 0, "zebra": 1}
    assert len(dataset) == 6
    assert [label for _, label in dataset.samples] == [0, 0, 0, 1, 1, 1]


def test_item_is_float_chw_with_exact_png_pixels(folder):
    root, pixels = folder
    dataset = ImageFolder(root)
    image, label = dataset[1]
    assert image.shape == (3, 5, 4) and image.dtype == np.float32 and label == 0
    np.testing.assert_allclose(image * 255, pixels["1.png", "ant"].transpose(2, 0, 1), atol=1e-4)


def test_jpeg_is_decoded(folder):
    root, _ = folder
    image, label = ImageFolder(root)[5]
    assert label == 1 and abs(float(image.mean()) - 200 / 255) < 0.02


def test_load_all_gives_an_array_dataset(folder):
    root, pixels = folder
    dataset = ImageFolder(root).load_all()
    assert isinstance(dataset, ImageDataset)
    assert dataset.images.shape == (6, 3, 5, 4) and dataset.images.flags["C_CONTIGUOUS"]
    assert dataset.labels.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(dataset.images[3] * 255, pixels["0.png", "zebra"].transpose(2, 0, 1), atol=1e-4)


def test_grayscale_gives_one_channel(folder):
    root, _ = folder
    assert ImageFolder(root, grayscale=True).load_all().images.shape == (6, 1, 5, 4)


def test_transform_is_applied_per_item(folder):
    root, _ = folder
    plain, _ = ImageFolder(root)[0]
    flipped, _ = ImageFolder(root, transform=RandomHorizontalFlip(p=1.0))[0]
    np.testing.assert_array_equal(flipped, plain[..., ::-1])


def test_corrupt_image_names_the_file(folder):
    root, _ = folder
    (root / "ant" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    dataset = ImageFolder(root)
    broken_index = [path.name for path, _ in dataset.samples].index("broken.png")
    with pytest.raises(DatasetError, match=r"cannot read image .*broken\.png"):
        dataset[broken_index]
    with pytest.raises(DatasetError, match=r"broken\.png"):
        dataset.load_all()


def test_truncated_jpeg_names_the_file(folder):
    root, _ = folder
    path = root / "zebra" / "2.JPG"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match=r"2\.JPG"):
        ImageFolder(root)[5]


def test_load_all_needs_equal_sizes(folder):
    root, _ = folder
    Image.fromarray(np.zeros((7, 7, 3), np.uint8)).save(root / "zebra" / "3.png")
    with pytest.raises(DatasetError, match=r"3\.png is 7x7 .* load_all needs images of one size"):
        ImageFolder(root).load_all()


def test_empty_or_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DatasetError, match=r"no image files \(\.png, \.jpg.*\) in class subfolders"):
        ImageFolder(tmp_path)


def test_sixteen_bit_and_float_files_are_scaled(tmp_path):
    (tmp_path / "deep").mkdir()
    Image.fromarray(np.array([[0, 32768], [65535, 13107]], dtype=np.uint16)).save(tmp_path / "deep" / "a.png")
    Image.fromarray(np.array([[0.0, 0.5], [1.0, 2.0]], dtype=np.float32)).save(tmp_path / "deep" / "b.tif")
    images = ImageFolder(tmp_path, grayscale=True).load_all().images
    np.testing.assert_allclose(images[0, 0], [[0, 32768 / 65535], [1, 0.2]], rtol=1e-6)
    np.testing.assert_allclose(images[1, 0], [[0, 0.5], [1, 1]])


def test_pixel_limit_applies_to_every_file(folder):
    root, _ = folder
    with pytest.raises(DatasetError, match=r"is 4x5 = 20 pixels, more than the limit of 19"):
        ImageFolder(root, max_pixels=19)[0]
    assert ImageFolder(root, max_pixels=20)[0][0].shape == (3, 5, 4)


def test_file_with_an_image_suffix_that_is_a_folder_is_ignored(folder):
    root, _ = folder
    (root / "ant" / "not-a-file.png").mkdir()
    assert len(ImageFolder(root)) == 6


def test_load_all_refuses_more_than_its_budget_before_decoding_the_rest(folder, monkeypatch):
    root, _ = folder
    dataset = ImageFolder(root)
    decoded = []
    monkeypatch.setattr(dataset, "read", lambda path: decoded.append(path) or ImageFolder.read(dataset, path))
    with pytest.raises(DatasetError, match=r"6 images of 4x5 .* more than the .* GiB load_all allows"):
        dataset.load_all(max_bytes=6 * 3 * 5 * 4 * 4 - 1)
    assert len(decoded) == 1
    assert dataset.load_all(max_bytes=6 * 3 * 5 * 4 * 4).images.shape == (6, 3, 5, 4)
