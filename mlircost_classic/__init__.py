"""mlircost_classic: predict hardware costs of MLIR programs with classical ML."""

__version__ = "0.1.0.dev0"
