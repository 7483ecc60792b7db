# Empty dependencies file for fx_bus.
# This may be replaced when dependencies are built.
