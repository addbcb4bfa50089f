"""Command-line tools: one module per `segmentoly` sub-command, also run by the scripts in tools/."""
