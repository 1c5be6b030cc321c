"""Tests of tinygrad_cnn.data: file formats, datasets, downloads, image reading, the DataLoader."""
