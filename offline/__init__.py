"""The offline plan: run the program under an engine-less monitor and write what it would do."""
