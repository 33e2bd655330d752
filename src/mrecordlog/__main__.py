"""``python -m mrecordlog``: the ``mrecordlog`` command (``mrecordlog.cli``)."""

import sys

from mrecordlog.cli import main

if __name__ == "__main__":
    sys.exit(main())
