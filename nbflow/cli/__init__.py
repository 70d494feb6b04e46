"""The command line: argument parsing, exit codes, and how results are shown (reporters, progress,
cells, graph) -- a thin layer over the library."""
