# Empty dependencies file for fx_format.
# This may be replaced when dependencies are built.
