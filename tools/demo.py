#!/usr/bin/env python3
"""Run a model on images, a folder, a video file or a webcam and show or write the annotated result.

Same as `segmentoly demo`; run with -h for the options.
"""

import sys

from segmentoly.commands.demo import cli

if __name__ == "__main__":
    sys.exit(cli())
