"""datadiet: choose which rows of a large corpus to train on, under a budget."""

__version__ = "0.1.0"
