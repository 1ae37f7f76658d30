"""Makes the NKeys and JWTs of a throw-away NATS operator for the CourierNATS authentication tests.

Usage: nats_credentials.py DIRECTORY

Writes into DIRECTORY:
  operator.conf  a nats-server include: operator mode with an in-memory resolver holding the account
  user.creds     the user's credentials file (JWT and seed), as `nsc generate creds` writes it
  nkey.seed      a separate user NKey seed, for plain NKey authentication
  nkey.pub       its public key
  nkey.conf      a nats-server include that admits that NKey (no operator)

The JWTs are built here (with the nkeys package) because nsc is neither in Debian nor on PyPI.
"""
import base64
import hashlib
import json
import os
import sys
import time

import nacl.signing
import nkeys


def new_pair(prefix):
    raw = os.urandom(32)
    seed = nkeys.encode_seed(raw, prefix)
    pair = nkeys.from_seed(bytearray(seed))
    return seed.decode(), pair.public_key.decode(), pair


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(claims, signer):
    header = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    # A unique ID from a hash of the claims without it (the Go library hashes with SHA-512/256;
    # nats-server does not recompute it).
    body = json.dumps(claims, separators=(",", ":")).encode()
    claims["jti"] = base64.b32encode(hashlib.sha256(body).digest()).decode().rstrip("=")
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = signer.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{b64(signature)}"


def main(directory):
    now = int(time.time())
    _, operator_public, operator = new_pair(nkeys.PREFIX_BYTE_OPERATOR)
    _, account_public, account = new_pair(nkeys.PREFIX_BYTE_ACCOUNT)
    user_seed, user_public, _ = new_pair(nkeys.PREFIX_BYTE_USER)

    operator_jwt = jwt({"iat": now, "iss": operator_public, "sub": operator_public, "name": "courier-test",
                        "nats": {"type": "operator", "version": 2}}, operator)
    limits = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True,
              "conn": -1, "leaf": -1}
    account_jwt = jwt({"iat": now, "iss": operator_public, "sub": account_public, "name": "courier",
                       "nats": {"limits": limits, "type": "account", "version": 2}}, operator)
    user_jwt = jwt({"iat": now, "iss": account_public, "sub": user_public, "name": "courier-user",
                    "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                             "type": "user", "version": 2}}, account)

    with open(os.path.join(directory, "operator.conf"), "w") as f:
        f.write(f"operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {account_public}: {account_jwt}\n}}\n")
    with open(os.path.join(directory, "user.creds"), "w") as f:
        f.write("-----BEGIN NATS USER JWT-----\n" + user_jwt + "\n------END NATS USER JWT------\n\n"
                "************************* IMPORTANT *************************\n"
                "NKEY Seed printed below can be used to sign and prove identity.\n"
                "NKEYs are sensitive and should be treated as secrets.\n\n"
                "-----BEGIN USER NKEY SEED-----\n" + user_seed + "\n------END USER NKEY SEED------\n\n"
                "*************************************************************\n")

    nkey_seed, nkey_public, _ = new_pair(nkeys.PREFIX_BYTE_USER)
    with open(os.path.join(directory, "nkey.seed"), "w") as f:
        f.write(nkey_seed + "\n")
    with open(os.path.join(directory, "nkey.pub"), "w") as f:
        f.write(nkey_public)
    with open(os.path.join(directory, "nkey.conf"), "w") as f:
        f.write(f"authorization {{\n  users = [ {{ nkey: {nkey_public} }} ]\n}}\n")
    # The tests look for the secrets in what Courier logs and throws.
    with open(os.path.join(directory, "secrets.json"), "w") as f:
        json.dump({"userJWT": user_jwt, "userSeed": user_seed, "nkeySeed": nkey_seed}, f)


if __name__ == "__main__":
    main(sys.argv[1])
