"""The project's local AWS emulator: moto's server plus the behaviours it lacks (server.py),
a fault layer in front of it (faults.py), and Cognito's request-rate quotas (quotas.py)."""

from .faults import FaultConfig, FaultInjector, clear_faults, fault_stats, set_faults
from .quotas import QuotaEnforcer, quota_stats
from .server import EmulatorServer, build_app, reset, serve_forever

__all__ = [
    "EmulatorServer",
    "FaultConfig",
    "FaultInjector",
    "QuotaEnforcer",
    "build_app",
    "clear_faults",
    "fault_stats",
    "quota_stats",
    "reset",
    "serve_forever",
    "set_faults",
]
