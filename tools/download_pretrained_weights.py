#!/usr/bin/env python3
"""Download the pretrained Detectron and maskrcnn-benchmark models, convert them to segmentoly checkpoints and
export them to ONNX and OpenVINO IR (under data/pretrained_models by default).

Same as `segmentoly download`; run with -h for the options.
"""

import sys

from segmentoly.commands.download import cli

if __name__ == "__main__":
    sys.exit(cli())
