import sys

from rosetta.worker.cell import main

sys.exit(main())
