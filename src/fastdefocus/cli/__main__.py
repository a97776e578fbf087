import sys

from fastdefocus.cli import main

sys.exit(main())
