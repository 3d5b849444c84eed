"""Train a network with seed 000's protocol and write a checkpoint plus its provenance.

Same as `greenbench train`; kept as a script for users who run tools directly.
"""

import sys

from greenbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
