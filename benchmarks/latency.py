"""``python -m benchmarks.latency ...``: the latency benchmark, same as ``scae bench``.

The implementation is ``scae_tf.latency`` (the command line and the demo use it too).
"""

import sys

from scae_tf.latency import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m benchmarks.latency"))
