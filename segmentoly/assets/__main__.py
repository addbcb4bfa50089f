import sys

from segmentoly.assets import main

sys.exit(main())
