"""dockyard: a Docker-Engine-compatible container engine."""

__version__ = "0.1.0"
