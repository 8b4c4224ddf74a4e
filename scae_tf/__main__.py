import sys

from scae_tf.cli import main

sys.exit(main())
