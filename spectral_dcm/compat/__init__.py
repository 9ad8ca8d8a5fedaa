"""Adapters to external conventions (SPM12, atcm, the LaNMM authors' code), for parity and migration."""
