"""``python -m export ...``: ``scae export`` for checkouts without the console script."""

import sys

from scae_tf.cli import main

sys.exit(main(["export", *sys.argv[1:]]))
