"""``python -m synthcontrol``: the same as the ``synthcontrol`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (doctest collection) must not run it
    sys.exit(main())
