"""The library's one source of randomness.

Initialisation, dropout and data shuffling all draw from the generator returned by
``get_rng()``, so ``manual_seed(seed)`` makes a whole training run repeat bit for bit.
"""
import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the library's generator (initialisation, dropout, shuffling) and return it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng() -> np.random.Generator:
    """The generator every random operation of the library draws from."""
    return _rng


def seed() -> int:
    """Reseed the library's generator from fresh entropy and return the seed used (torch.seed)."""
    chosen = int(np.random.SeedSequence().entropy % (2**63))
    manual_seed(chosen)
    return chosen
