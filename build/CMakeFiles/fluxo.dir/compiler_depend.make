# Empty compiler generated dependencies file for fluxo.
# This may be replaced when dependencies are built.
