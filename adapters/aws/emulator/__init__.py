"""The project's local AWS emulator: moto's server plus the behaviours it lacks (server.py),
and a fault layer in front of it (faults.py)."""

from .faults import FaultConfig, FaultInjector, clear_faults, fault_stats, set_faults
from .server import EmulatorServer, build_app, reset, serve_forever

__all__ = [
    "EmulatorServer",
    "FaultConfig",
    "FaultInjector",
    "build_app",
    "clear_faults",
    "fault_stats",
    "reset",
    "serve_forever",
    "set_faults",
]
