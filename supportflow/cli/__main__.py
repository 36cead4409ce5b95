"""`python -m supportflow.cli ...` (how `supportflow dev` starts the sandbox)."""

import os
import sys

from supportflow.cli import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())
