#!/usr/bin/env python3
"""Sign with a PKCS#11 token's keys through PyKCS11.

Loads the module (--module or PKCS11_MODULE), opens the token labelled --token, logs in with the
user PIN read from --pin-file (or the PKCS11_PIN environment variable: never from the command
line), prints every key on the token as one JSON line each, then for each --sign LABEL signs
--data with that key (CKM_ECDSA_SHA256 for EC, CKM_SHA256_RSA_PKCS for RSA), checks the
signature in the token with C_Verify, checks that C_Verify refuses it for other data, and writes
the signature to --out/LABEL.sig (ECDSA as PKCS#11 gives it: raw r||s).
"""

import argparse
import json
import os
import sys

import PyKCS11
from PyKCS11 import LowLevel

# Named curves by the DER of their OID in CKA_EC_PARAMS.
CURVES = {
    bytes.fromhex("06082a8648ce3d030107"): "p256",
    bytes.fromhex("06052b81040022"): "p384",
    bytes.fromhex("06052b81040023"): "p521",
}

CLASSES = {
    PyKCS11.CKO_PRIVATE_KEY: "private",
    PyKCS11.CKO_PUBLIC_KEY: "public",
    PyKCS11.CKO_SECRET_KEY: "secret",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", default=os.environ.get("PKCS11_MODULE"))
    ap.add_argument("--token", default="device")
    ap.add_argument("--pin-file")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default=".")
    ap.add_argument("--sign", action="append", default=[], metavar="LABEL")
    args = ap.parse_args()
    if not args.module:
        sys.exit("no module: give --module or set PKCS11_MODULE")
    if args.pin_file:
        with open(args.pin_file, encoding="utf-8") as f:
            pin = f.read().rstrip("\r\n")
    elif "PKCS11_PIN" in os.environ:
        pin = os.environ["PKCS11_PIN"]
    else:
        sys.exit("no PIN: give --pin-file or set PKCS11_PIN")

    lib = PyKCS11.PyKCS11Lib()
    lib.load(args.module)
    slot = find_slot(lib, args.token)
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    session.login(pin)
    try:
        keys = list_keys(session)
        for k in keys:
            print(json.dumps({n: k[n] for n in ("class", "label", "id", "key_type")}))
        with open(args.data, "rb") as f:
            data = f.read()
        for label in args.sign:
            print(json.dumps(sign_and_verify(session, keys, label, data, args.out)))
    finally:
        session.logout()
        session.closeSession()


def find_slot(lib, token):
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getTokenInfo(slot).label.strip() == token:
            return slot
    sys.exit(f"no token labelled {token!r}")


def list_keys(session):
    keys = []
    for cls, name in CLASSES.items():
        for obj in session.findObjects([(PyKCS11.CKA_CLASS, cls)]):
            label, cka_id, key_type = session.getAttributeValue(
                obj, [PyKCS11.CKA_LABEL, PyKCS11.CKA_ID, PyKCS11.CKA_KEY_TYPE]
            )
            keys.append(
                {
                    "class": name,
                    "label": label,
                    "id": bytes(cka_id).hex(),
                    "key_type": describe(session, obj, cls, key_type),
                    "handle": obj,
                }
            )
    return keys


def describe(session, obj, cls, key_type):
    """The key type as `keyward list` names it (rsa:2048, ec:p256, ...)."""
    if key_type == PyKCS11.CKK_RSA:
        # A private key's modulus is readable even when the key is sensitive.
        (modulus,) = session.getAttributeValue(obj, [PyKCS11.CKA_MODULUS])
        return f"rsa:{len(bytes(modulus)) * 8}"
    if key_type == PyKCS11.CKK_EC:
        (params,) = session.getAttributeValue(obj, [PyKCS11.CKA_EC_PARAMS])
        return "ec:" + CURVES.get(bytes(params), bytes(params).hex())
    return PyKCS11.CKK[key_type]


def sign_and_verify(session, keys, label, data, out):
    def one(cls):
        found = [k for k in keys if k["label"] == label and k["class"] == cls]
        if len(found) != 1:
            sys.exit(f"{len(found)} {cls} keys labelled {label!r}")
        return found[0]

    private, public = one("private"), one("public")
    if private["key_type"].startswith("ec:"):
        mech = PyKCS11.Mechanism(PyKCS11.CKM_ECDSA_SHA256, None)
        name = "CKM_ECDSA_SHA256"
    elif private["key_type"].startswith("rsa:"):
        mech = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS, None)
        name = "CKM_SHA256_RSA_PKCS"
    else:
        sys.exit(f"{label}: cannot sign with a {private['key_type']} key here")
    sig = bytes(session.sign(private["handle"], data, mech))
    if not session.verify(public["handle"], data, sig, mech):
        sys.exit(f"{label}: C_Verify refused the signature C_Sign made")
    if session.verify(public["handle"], data + b"!", sig, mech):
        sys.exit(f"{label}: C_Verify accepted the signature for other data")
    path = os.path.join(out, f"{label}.sig")
    with open(path, "wb") as f:
        f.write(sig)
    return {"signed": label, "mechanism": name, "signature": path, "length": len(sig), "verified": True}


if __name__ == "__main__":
    try:
        main()
    except PyKCS11.PyKCS11Error as e:
        sys.exit(f"PKCS#11 error: {e}")
