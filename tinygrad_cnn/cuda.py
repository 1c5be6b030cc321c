"""``tinygrad_cnn.cuda``: there is no GPU here (NumPy runs on the CPU), so the usual device choice
of a torch program, ``"cuda" if torch.cuda.is_available() else "cpu"``, picks the CPU."""


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0
