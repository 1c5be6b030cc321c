"""Neural-network building blocks: the functional API (``functional``, imported as ``F``)."""
from . import functional
