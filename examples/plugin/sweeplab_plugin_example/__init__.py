"""A minimal sweeplab plugin: the ``conv_operator1d`` model and the ``heat1d`` data set."""
