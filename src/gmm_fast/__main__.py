"""``python -m gmm_fast``: the ``gmm-fast`` command (see ``gmm_fast._cli``)."""
import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
