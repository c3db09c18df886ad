import sys

from custos.cli import main

sys.exit(main())
