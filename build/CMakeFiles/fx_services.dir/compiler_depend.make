# Empty compiler generated dependencies file for fx_services.
# This may be replaced when dependencies are built.
