#!/usr/bin/env python3
"""Evaluate a model with the COCO protocol (box and mask AP), with the PyTorch or OpenVINO backend.

Same as `segmentoly test`; run with -h for the options.
"""

import sys

from segmentoly.commands.evaluate import cli

if __name__ == "__main__":
    sys.exit(cli())
