"""The project's local AWS emulator: moto's server plus the behaviours it lacks (server.py)."""

from .server import EmulatorServer, build_app, reset, serve_forever

__all__ = ["EmulatorServer", "build_app", "reset", "serve_forever"]
