#!/usr/bin/env python3
"""Write a small, valid scimtrail audit bundle (docs/bundle.md), or a damaged one, for testing verifiers.

    python3 make_test_bundle.py OUTDIR [--filtered] [--cosigned] [--tamper KIND]

The log holds 9 events (seq 0..8) and the checkpoint covers all of them. By default every event is
exported; --filtered exports only the events about user alice (seq 0, 1, 4, 7, 8). Event 4 is pruned:
its leaf and proof are there, its payload line is not. --cosigned adds a second, foreign signature
line to the checkpoint, which verifiers must ignore. --tamper KIND damages the bundle; KIND is one of
the keys of TAMPER below. The signing key is derived from a fixed seed, so output is reproducible
(salts included). Canonical JSON comes from verify_bundle.py (checked here against RFC 8785
examples); the Merkle proofs are built independently, from the recursive RFC 6962 definitions.
"""
import argparse, base64, hashlib, json, struct, sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ next to the docs
sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_bundle import jcs, jcs_bytes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

ORIGIN = KEY_NAME = "scimtrail.example/audit"
ALICE, BOB, GROUP = "2819c223-7f76-453a-919d-413861904646", "c75ad752-64ae-4823-840d-ffa80929976c", \
    "e9e30dba-f08f-4109-8486-d5c6a331660a"


def b64(b):
    return base64.b64encode(b).decode()


def check_jcs():
    """Spot checks of the canonical JSON: number forms (expected strings are what ECMAScript's
    String(number) gives for those IEEE bit patterns), key order by UTF-16 code units, escaping."""
    doubles = {0x0000000000000001: "5e-324", 0x8000000000000000: "0", 0x7fefffffffffffff: "1.7976931348623157e+308",
               0x4340000000000000: "9007199254740992", 0x4430000000000000: "295147905179352830000",
               0x44b52d02c7e14af6: "1e+23", 0x444b1ae4d6e2ef50: "1e+21", 0x444b1ae4d6e2ef4f: "999999999999999900000",
               0x3eb0c6f7a0b5ed8d: "0.000001", 0x3eb0c6f7a0b5ed8c: "9.999999999999997e-7",
               0x41b3de4355555553: "333333333.3333332", 0xc00ffffffffffffe: "-3.999999999999999"}
    for bits, want in doubles.items():
        got = jcs(struct.unpack(">d", bits.to_bytes(8, "big"))[0])
        assert got == want, (hex(bits), got, want)
    assert jcs({"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u00f6": 6, "\u0080": 7}) == \
        '{"\\r":2,"1":4,"\u0080":7,"\u00f6":6,"\u20ac":1,"\U0001f600":5,"\ufb33":3}'
    assert jcs(["\u20ac$\u000f\nA'B\"\\\\\"/", 1e-7, 1e21, 10.0, -0.0]) == \
        '["\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/",1e-7,1e+21,10,0]'


# ---- RFC 6962 §2.1 by its recursive definitions --------------------------------------------------
def mth(d):
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while k * 2 < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m, d):
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]


# ---- the events ----------------------------------------------------------------------------------
def event(seq, action, method, url, scim, status, req, resp, changes, target_id=ALICE, rtype="User", kind="token"):
    """(envelope, payload) of one event; changes are (op, path, old, new)."""
    salt = hashlib.sha256(b"salt %d" % seq).digest()[:16]
    def digest(v):
        data = jcs_bytes(v)
        return {"sha256": b64(hashlib.sha256(salt + data).digest()), "size": len(data)}
    p, _, q = url.partition("?")
    env = {
        "leafFormat": 1, "id": f"0193a5f2-7c00-7{seq:03x}-8000-00000000000{seq}", "seq": seq,
        "time": f"2026-11-28T13:32:{seq + 10:02d}.{seq * 111111:06d}Z", "tenant": "default",
        "requestId": f"req-{seq:04d}",
        "actor": {"kind": kind, "id": "tok_entra" if kind == "token" else None,
                  "name": "Entra provisioning" if kind == "token" else None,
                  "client": "Microsoft Entra ID", "ip": "203.0.113.7", "userAgent": "Azure-SCIM-Provisioning/1.0"},
        "action": action, "operation": {"method": method, "path": p, "query": q or None, "scim": scim},
        "target": {"system": "scim.example.com", "type": rtype, "id": target_id, "externalId": None,
                   "display": None, "versionBefore": None, "versionAfter": None},
        "outcome": {"result": "success" if status < 400 else "failure", "status": status,
                    "scimType": None, "detail": None},
        "latencyMs": [1.5, 0.25, 12.0, 3.125, 0.1, 7.0, 1e-7, 250.75, 1.0][seq],
        "parentId": None,
        "changes": [{"op": op, "path": pth, "old": digest(o), "new": digest(n)} for op, pth, o, n in changes],
        "request": {"headers": {"authorization": "[REDACTED]", "content-type": "application/scim+json"},
                    "body": digest(req), "truncated": False},
        "response": {"headers": {"content-type": "application/scim+json"}, "body": digest(resp), "truncated": False},
    }
    payload = {"seq": seq, "salt": b64(salt), "request": req, "response": resp,
               "changes": [{"old": o, "new": n} for _, _, o, n in changes]}
    return env, payload


def events():
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@example.com",
            "name": {"givenName": "Alice", "familyName": "Zoë"}, "active": True}
    err = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "401", "detail": "bad token"}
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "active", "value": False}]}
    odd = {"displayName": "Ålice \U0001f600 \u20ac\t\"q\"\u0001", "\U0001f600key": 1, "\ufb33key": 2,
           "nums": [1e21, 1e-7, 123456789012345680000, -0.0, 0.1, 5e-324, 2 ** 53]}
    ev = [
        event(0, "user.create", "POST", "/scim/v2/Users", "create", 201, user, dict(user, id=ALICE),
              [("add", "userName", None, "alice@example.com"), ("add", "active", None, True)]),
        event(1, "user.update", "PATCH", "/scim/v2/Users/" + ALICE, "patch", 200,
              {"Operations": [{"op": "replace", "path": "displayName", "value": "Alice Z."}]}, None,
              [("replace", "displayName", None, "Alice Z.")]),
        event(2, "group.create", "POST", "/scim/v2/Groups", "create", 201, {"displayName": "Admins"},
              {"id": GROUP, "displayName": "Admins"}, [("add", "displayName", None, "Admins")], GROUP, "Group"),
        event(3, "group.member.add", "PATCH", "/scim/v2/Groups/" + GROUP, "patch", 204,
              {"Operations": [{"op": "add", "path": "members", "value": [{"value": BOB}]}]}, None,
              [("add", "members", [], [{"value": BOB}])], GROUP, "Group"),
        event(4, "user.deactivate", "PATCH", "/scim/v2/Users/" + ALICE, "patch", 200, patch, None,
              [("replace", "active", True, False)]),
        event(5, "auth.failure", "GET", "/scim/v2/Users?filter=userName%20eq%20%22bob%22", "list", 401, None, err,
              [], None, None, "anonymous"),
        event(6, "resource.read", "GET", "/scim/v2/Users/" + BOB, "get", 200, None, {"id": BOB, "userName": "bob"},
              [], BOB),
        event(7, "user.update", "PUT", "/scim/v2/Users/" + ALICE, "replace", 200, odd, odd,
              [("replace", "displayName", "Alice Z.", odd["displayName"]), ("add", "nums", None, odd["nums"])]),
        event(8, "user.delete", "DELETE", "/scim/v2/Users/" + ALICE, "delete", 204, None, None,
              [("remove", "userName", "alice@example.com", None)]),
    ]
    return [(jcs(e), p) for e, p in ev]


def signature_line(name, key, text):
    pub = key.public_key().public_bytes_raw()
    kid = hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]
    return f"\u2014 {name} {b64(kid + key.sign(text.encode()))}\n", kid, pub


def edit_line(path, no, fn):
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[no - 1] = fn(lines[no - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


def line_of(path, seq):
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, l in enumerate(lines, 1) if json.loads(l)["seq"] == seq)


def drop_line(path, no):
    lines = path.read_text(encoding="utf-8").splitlines(True)
    path.write_text("".join(lines[:no - 1] + lines[no:]), encoding="utf-8")


def swap_lines(path, a, b):
    lines = path.read_text(encoding="utf-8").splitlines(True)
    lines[a - 1], lines[b - 1] = lines[b - 1], lines[a - 1]
    path.write_text("".join(lines), encoding="utf-8")


def flip_b64(s, at):
    raw = bytearray(base64.b64decode(s))
    raw[at] ^= 1
    return b64(bytes(raw))


def retag_proof(out):
    """After a leaf edit: recompute that leaf's hash into its proof, as a careful forger would."""
    line = (out / "leaves.jsonl").read_text(encoding="utf-8").split("\n")[1].encode()
    edit_line(out / "proofs.jsonl", 2, lambda l: json.dumps(
        dict(json.loads(l), leafHash=b64(hashlib.sha256(b"\x00" + line).digest())), separators=(",", ":")))


def tamper_sig(out):
    t = (out / "checkpoint").read_text(encoding="utf-8")
    head, sig = t.rsplit(" ", 1)
    (out / "checkpoint").write_text(head + " " + flip_b64(sig.strip(), 10) + "\n", encoding="utf-8")


TAMPER = {  # what to damage: every one of these must make a verifier fail
    "leaf": lambda o: edit_line(o / "leaves.jsonl", 2, lambda l: l.replace('"status":200', '"status":201')),
    "leaf-and-hash": lambda o: (TAMPER["leaf"](o), retag_proof(o)),
    "leaf-json": lambda o: edit_line(o / "leaves.jsonl", 3, lambda l: l[:-1]),
    "leaf-format": lambda o: edit_line(o / "leaves.jsonl", 1, lambda l: l.replace('"leafFormat":1', '"leafFormat":2')),
    "payload": lambda o: edit_line(o / "payloads.jsonl", 1, lambda l: l.replace("alice@", "mallory@")),
    "payload-salt": lambda o: edit_line(o / "payloads.jsonl", 2, lambda l: json.dumps(
        dict(json.loads(l), salt=flip_b64(json.loads(l)["salt"], 0)))),
    "payload-change": lambda o: edit_line(o / "payloads.jsonl", line_of(o / "payloads.jsonl", 7),
                                          lambda l: l.replace('"Alice Z."', '"Alice Y."')),
    "proof": lambda o: edit_line(o / "proofs.jsonl", 3, lambda l: json.dumps(
        dict(json.loads(l), hashes=[flip_b64(json.loads(l)["hashes"][0], 5)] + json.loads(l)["hashes"][1:]))),
    "proof-short": lambda o: edit_line(o / "proofs.jsonl", 1, lambda l: json.dumps(
        dict(json.loads(l), hashes=json.loads(l)["hashes"][:-1]))),
    "signature": tamper_sig,
    "checkpoint-size": lambda o: edit_line(o / "checkpoint", 2, lambda l: str(int(l) + 1)),
    "remove-leaf": lambda o: drop_line(o / "leaves.jsonl", 2),
    "remove-proof": lambda o: drop_line(o / "proofs.jsonl", 3),
    "reorder": lambda o: swap_lines(o / "leaves.jsonl", 1, 2),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="directory to write (created if needed)")
    ap.add_argument("--filtered", action="store_true", help="export only alice's events (seq 0, 1, 4, 7, 8)")
    ap.add_argument("--cosigned", action="store_true", help="add a foreign signature line to the checkpoint")
    ap.add_argument("--tamper", choices=sorted(TAMPER) + ["foreign-key"],
                    help="damage the bundle this way (foreign-key: the checkpoint is signed by another key)")
    args = ap.parse_args()
    check_jcs()

    log = events()
    hashes = [line.encode() for line, _ in log]
    size, root = len(log), mth(hashes)
    chosen = [0, 1, 4, 7, 8] if args.filtered else list(range(size))
    pruned = {4}

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"scimtrail test log key").digest())
    other = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"some witness key").digest())
    text = f"{ORIGIN}\n{size}\n{b64(root)}\n"
    _, kid, pub = signature_line(KEY_NAME, key, text)
    sig = signature_line(KEY_NAME, other if args.tamper == "foreign-key" else key, text)[0]
    if args.cosigned:
        sig = signature_line("witness.example/w1", other, text)[0] + sig

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoint").write_text(f"{text}\n{sig}", encoding="utf-8")
    (out / "log-key.pub").write_text(f"{KEY_NAME}+{kid.hex()}+{b64(bytes([1]) + pub)}\n", encoding="utf-8")
    (out / "leaves.jsonl").write_text("".join(log[s][0] + "\n" for s in chosen), encoding="utf-8")
    (out / "payloads.jsonl").write_text("".join(
        jcs(log[s][1]) + "\n" for s in chosen if s not in pruned), encoding="utf-8")
    (out / "proofs.jsonl").write_text("".join(json.dumps(
        {"seq": s, "treeSize": size, "leafHash": b64(mth([hashes[s]])), "hashes": [b64(h) for h in path(s, hashes)]},
        separators=(",", ":")) + "\n" for s in chosen), encoding="utf-8")
    if args.tamper in TAMPER:
        TAMPER[args.tamper](out)
    print(f"wrote {out}: {len(chosen)} of {size} events, tree root {b64(root)}"
          + (f", tampered: {args.tamper}" if args.tamper else ""))


if __name__ == "__main__":
    main()
