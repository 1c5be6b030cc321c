"""Tests of tinygrad_cnn.nn: modules, layers, initialisation."""
