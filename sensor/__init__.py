"""minewatch: a network sensor that finds cryptocurrency mining in traffic."""

__version__ = "0.1.0"
