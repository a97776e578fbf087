"""``python -m fastdefocus ...``: the same as the ``fastdefocus`` command."""
import sys

from fastdefocus.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
