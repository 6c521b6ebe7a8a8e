"""The CSMS's certificate authority and everything certificates: issuance, import, revocation."""


class PkiError(Exception):
    """A PKI problem worded for the operator: what is wrong and what to do about it."""
