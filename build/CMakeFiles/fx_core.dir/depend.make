# Empty dependencies file for fx_core.
# This may be replaced when dependencies are built.
