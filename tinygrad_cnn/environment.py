"""The environment variables the library reads, and the one error a bad value raises.

    TINYGRAD_CNN_KERNELS           fast | reference: the kernel set every thread starts on (kernels/)
    TINYGRAD_CNN_CACHE_MB          the array cache's limit in MB, 1024 by default (kernels/memory.py)
    TINYGRAD_CNN_TUNING            measure | fixed: time small layers' two methods once per host, or not (kernels/tuning.py)
    TINYGRAD_CNN_TUNING_FILE       where the timed choices are kept (kernels/tuning.py)
    TINYGRAD_CNN_MAX_IMAGE_PIXELS  the largest image the readers decode (data/images.py)
    TINYGRAD_CNN_DATA              a folder to look for dataset files in (data/locations.py)

Each is read, and checked, where it is used, when it is first needed rather than when the package
is imported: a bad value is then an ``EnvironmentVariableError`` naming the variable and what it
takes, which the command line reports as one line.
"""


class EnvironmentVariableError(ValueError):
    """A ``TINYGRAD_CNN_*`` environment variable holds a value the library cannot use."""
