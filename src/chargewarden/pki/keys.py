"""Private keys: generation, encrypted PKCS#8 files, strength rules, key/certificate matching."""

from __future__ import annotations

from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chargewarden.pki import PkiError
from chargewarden.pki.files import write_secret

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# DESIGN, PKI: RSA >= 2048 or EC >= 224 bits; anything weaker is refused everywhere.
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224


class WrongPassphrase(PkiError):
    """A key file could not be decrypted with the passphrase given."""


def generate_ec(curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve)


def generate_rsa(bits: int = MIN_RSA_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def describe_key(key: PublicKey | PrivateKey | object) -> str:
    """"EC P-256", "RSA 2048": how the operator sees a key type."""
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"EC {names.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA {key.key_size}"
    return type(key).__name__


def check_key_strength(key: object, what: str = "key") -> PublicKey:
    """The key as an RSA/EC public key; PkiError if it is weak or of another kind."""
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise PkiError(
                f"{what} is a weak key (RSA {key.key_size} bits); at least RSA {MIN_RSA_BITS} "
                f"or EC {MIN_EC_BITS} bits is required"
            )
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < MIN_EC_BITS:
            raise PkiError(
                f"{what} is a weak key (EC {key.curve.key_size} bits); at least EC "
                f"{MIN_EC_BITS} or RSA {MIN_RSA_BITS} bits is required"
            )
        return key
    raise PkiError(f"{what} is a {type(key).__name__}; only RSA and EC keys are supported")


def key_matches(certificate: x509.Certificate, key: PrivateKey) -> bool:
    """Whether ``key`` is the private half of the certificate's public key."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return certificate.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(
        enc, fmt
    )


def private_key_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM, encrypted with ``passphrase`` (None: unencrypted, for a station's own key)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_private_key(
    path: Path, key: PrivateKey, passphrase: bytes | None, *, exclusive: bool = False
) -> None:
    """Write ``key`` as PKCS#8 PEM with mode 0600 from creation.

    ``passphrase=None`` writes it unencrypted: only for a key handed to a station, which has no
    way to type a passphrase.
    """
    if passphrase is not None and not passphrase:
        raise PkiError("refusing to encrypt a private key with an empty passphrase")
    write_secret(path, private_key_pem(key, passphrase), exclusive=exclusive)


def load_private_key_pem(data: bytes, passphrase: bytes | None, where: str) -> PrivateKey:
    """Parse a PEM private key (PKCS#8 or traditional); PkiError naming ``where`` otherwise."""
    if b"-----BEGIN" not in data:
        raise PkiError(f"{where} is not PEM (no -----BEGIN line)")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        # cryptography's TypeErrors here mean "encrypted but no password" or the reverse.
        if passphrase is None:
            raise PkiError(f"{where} is encrypted; give its passphrase") from None
        raise PkiError(f"{where} is not encrypted, but a passphrase was expected") from None
    except ValueError as exc:
        if b"ENCRYPTED" in data and passphrase is not None:
            raise WrongPassphrase(
                f"cannot decrypt {where}: wrong passphrase"
            ) from None
        raise PkiError(f"{where} is not a readable private key ({_first_line(exc)})") from None
    except Exception as exc:  # unsupported algorithms raise UnsupportedAlgorithm
        raise PkiError(f"{where} is not a usable private key ({_first_line(exc)})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{where} is a {type(key).__name__}; only RSA and EC keys are supported")
    return key


def read_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """Read an encrypted PKCS#8 key file; WrongPassphrase (a PkiError) if it does not open.

    An unencrypted file is refused too: the CA's keys are always encrypted, so an unencrypted
    one was put there by someone else.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"key file {path} is missing") from None
    except OSError as exc:
        raise PkiError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if b"ENCRYPTED PRIVATE KEY" not in data:
        raise PkiError(f"key file {path} is not encrypted; CA key files must be encrypted")
    return load_private_key_pem(data, passphrase, f"key file {path}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
