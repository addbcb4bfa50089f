#!/usr/bin/env python3
"""Export a model to ONNX with OpenVINO's detection operators (and an OpenVINO IR beside it).

Same as `segmentoly export`; run with -h for the options.
"""

import sys

from segmentoly.commands.export import cli

if __name__ == "__main__":
    sys.exit(cli())
