"""ChargeWarden: security-first OCPP Central System."""
__version__ = "0.1.0"
