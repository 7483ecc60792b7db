# Empty dependencies file for fx_schema.
# This may be replaced when dependencies are built.
