"""python -m hermes_jupyter.demos DEST: copy the demo notebooks into DEST."""
import sys

from hermes_jupyter.demos import main

sys.exit(main())
