#!/usr/bin/env python3
"""Train a Mask R-CNN; with no arguments, Detectron's e2e Mask R-CNN R-50-FPN baseline on data/coco.

Same as `segmentoly train`; run with -h for the options.
Several processes: `torchrun --nproc_per_node N tools/train.py`.
"""

import sys

from segmentoly.commands.train import cli

if __name__ == "__main__":
    sys.exit(cli())
