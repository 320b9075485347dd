"""``python -m components validate | render | schema | verify``."""

import sys

from components.cli import main

if __name__ == "__main__":
    sys.exit(main())
