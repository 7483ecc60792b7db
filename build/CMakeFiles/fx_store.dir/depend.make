# Empty dependencies file for fx_store.
# This may be replaced when dependencies are built.
