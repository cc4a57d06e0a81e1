#!/usr/bin/env python3
"""Reference verifier for a scimtrail offline audit bundle (the format is in docs/bundle.md).

    python3 verify_bundle.py BUNDLE_DIR --key log-key.pub

The --key file is the log's verifier key, obtained out of band: the bundle's own log-key.pub is not
trusted. The script checks that the checkpoint is signed by that key, that every leaf in leaves.jsonl
is included in the signed tree, that every surviving payload matches the digests its leaf commits to,
and, when the bundle holds every leaf of the tree, recomputes the root from them. It prints one
"ok: ..." line and exits 0, or prints one "FILE:LINE: what failed" line and exits 1.
Needs Python 3.11+ and the `cryptography` package.
"""
import argparse, base64, binascii, hashlib, json, math, re, sys
from decimal import Decimal
from pathlib import Path

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:
    sys.exit("error: verify_bundle.py needs the 'cryptography' package (pip install cryptography)")


class Fail(Exception):
    def __init__(self, where, msg):
        super().__init__(f"{where}: {msg}")


def need(cond, where, msg):
    if not cond:
        raise Fail(where, msg)


def b64(data):
    return base64.b64encode(data).decode()


def unb64(s, n, what, where):
    """Canonical standard base64 (padded) of exactly n bytes (of any length if n is None)."""
    try:
        raw = base64.b64decode(s, validate=True) if isinstance(s, str) else None
    except (binascii.Error, ValueError):
        raw = None
    need(raw is not None and b64(raw) == s and n in (None, len(raw)), where,
         f"{what} is not base64 of {n or 'some'} bytes")
    return raw


def is_int(v):
    return type(v) is int and v >= 0  # not bool, not float


# ---- RFC 8785 canonical JSON (JCS) --------------------------------------------------------------
ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def es_number(x):
    """ECMAScript Number.prototype.toString of a number taken as an IEEE double (RFC 8785 §3.2.2.3)."""
    try:
        f = float(x)  # JCS takes every number, integers too, as an IEEE double
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise ValueError("a number is out of the range of an IEEE double")
    if f == 0:
        return "0"
    if f < 0:
        return "-" + es_number(-f)
    _, digs, exp = Decimal(repr(f)).as_tuple()  # repr: the shortest digits that round-trip
    n = exp + len(digs)  # f == 0.DIGS * 10**n
    digits = "".join(map(str, digs)).rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{mantissa}e{'+' if n > 1 else '-'}{abs(n - 1)}"


def jcs(v):
    """The RFC 8785 canonical text of a parsed JSON value."""
    if v is None or isinstance(v, bool):
        return {None: "null", True: "true", False: "false"}[v]
    if isinstance(v, (int, float)):
        return es_number(v)
    if isinstance(v, str):
        return '"' + "".join(ESCAPES.get(c) or (f"\\u{ord(c):04x}" if c < " " else c) for c in v) + '"'
    if isinstance(v, list):
        return "[" + ",".join(map(jcs, v)) + "]"
    keys = sorted(v, key=lambda k: k.encode("utf-16-be", "surrogatepass"))  # by UTF-16 code units
    return "{" + ",".join(jcs(k) + ":" + jcs(v[k]) for k in keys) + "}"


def jcs_bytes(v):
    return jcs(v).encode("utf-8")  # raises on a lone surrogate, as RFC 8785 requires


def parse_json(text):
    """json.loads, refusing duplicate keys and NaN/Infinity, which are not I-JSON."""
    def pairs(kv):
        if len(set(k for k, _ in kv)) != len(kv):
            raise ValueError("duplicate object key")
        return dict(kv)
    def constant(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


# ---- RFC 6962 Merkle tree, RFC 9162 inclusion proofs --------------------------------------------
def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_of(hashes):
    """MTH of a list of leaf hashes: split at the largest power of two smaller than n."""
    if len(hashes) <= 1:
        return hashes[0] if hashes else hashlib.sha256(b"").digest()
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(root_of(hashes[:k]), root_of(hashes[k:]))


def inclusion_ok(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2: does the audit path lead from leaf `index` to `root` of a tree of `size`?"""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# ---- C2SP verifier key and signed checkpoint ----------------------------------------------------
def key_id(name, pub):
    return hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4]


def read_text(path, label):
    try:
        return Path(path).read_bytes().decode("utf-8")
    except (OSError, UnicodeError) as e:
        raise Fail(label, f"cannot read: {e}")


def parse_key(path):
    where = f"{path}:1"
    name, _, rest = read_text(path, path).rstrip("\r\n").partition("+")
    hexid, _, blob = rest.partition("+")  # split at the first two "+": base64 may contain more
    need(name and not re.search(r"\s", name) and blob, where, "verifier key is not NAME+KEYID+BASE64")
    raw = unb64(blob, 33, "key", where)
    need(raw[0] == 1, where, f"key algorithm byte is {raw[0]}, not 1 (Ed25519)")
    need(key_id(name, raw[1:]).hex() == hexid, where,
         f"key id {hexid!r} does not match the key (expected {key_id(name, raw[1:]).hex()})")
    return name, bytes.fromhex(hexid), Ed25519PublicKey.from_public_bytes(raw[1:])


def parse_checkpoint(path, key):
    name, kid, pub = key
    body, sep, sigs = read_text(path, "checkpoint").partition("\n\n")
    need(sep, "checkpoint", "not a signed note: no empty line before the signatures")
    lines = body.split("\n")
    need(len(lines) >= 3, "checkpoint", "the body needs origin, tree size and root hash lines")
    need(lines[0], "checkpoint:1", "empty origin")
    need(re.fullmatch(r"0|[1-9][0-9]*", lines[1]), "checkpoint:2", f"tree size {lines[1]!r} is not decimal")
    root = unb64(lines[2], 32, "root hash", "checkpoint:3")
    need(sigs.endswith("\n"), "checkpoint", "no signature lines, or the last one lacks its newline")
    verified = False
    for no, sig in enumerate(sigs[:-1].split("\n"), start=len(lines) + 2):
        m = re.fullmatch(r"\u2014 (\S+) (\S+)", sig)
        need(m, f"checkpoint:{no}", "malformed signature line")
        raw = unb64(m[2], None, "signature", f"checkpoint:{no}")
        if m[1] != name or raw[:4] != kid:
            continue  # another key's signature (a witness, a cosigner): not ours to check
        try:
            pub.verify(raw[4:], (body + "\n").encode())
        except InvalidSignature:
            raise Fail(f"checkpoint:{no}", f"signature by {name} does not verify")
        verified = True
    need(verified, "checkpoint", f"no signature by key {name}+{kid.hex()}")
    return lines[0], int(lines[1]), root


# ---- the bundle ---------------------------------------------------------------------------------
def jsonl(bundle, name, terminated=False):
    """Yield (line number, line bytes, object) for each line of a JSON Lines file."""
    text = read_text(bundle / name, name)
    need(not terminated or text.endswith("\n") or not text, f"{name}:{text.count(chr(10)) + 1}",
         "last line is not terminated by a newline")
    lines = text.split("\n")
    for no, line in enumerate(lines[:-1] if lines[-1] == "" else lines, 1):
        try:
            obj = parse_json(line)
        except (ValueError, RecursionError) as e:
            raise Fail(f"{name}:{no}", f"not valid JSON: {e}")
        need(isinstance(obj, dict), f"{name}:{no}", "line is not a JSON object")
        yield no, line.encode(), obj


def is_digest(d):
    try:
        return isinstance(d, dict) and is_int(d.get("size")) and bool(unb64(d.get("sha256"), 32, "", ""))
    except Fail:
        return False


def verify(bundle, keyfile):
    origin, size, root = parse_checkpoint(bundle / "checkpoint", parse_key(keyfile))
    warnings, leaves, last = [], {}, -1  # leaves: seq -> (line number, leaf object, leaf hash)
    for no, raw, leaf in jsonl(bundle, "leaves.jsonl", terminated=True):
        w, seq, ch = f"leaves.jsonl:{no}", leaf.get("seq"), leaf.get("changes")
        need(is_int(leaf.get("leafFormat")) and leaf["leafFormat"] == 1, w, "leafFormat is not 1")
        need(is_int(seq), w, "seq is not a non-negative integer")
        need(seq > last, w, f"seq {seq} does not increase")
        need(seq < size, w, f"seq {seq} is beyond the checkpoint tree size {size}")
        for part in "request", "response":
            need(isinstance(leaf.get(part), dict) and is_digest(leaf[part].get("body")), w,
                 f"{part}.body is not a digest")
        need(isinstance(ch, list) and all(isinstance(c, dict) and is_digest(c.get("old")) and
                                          is_digest(c.get("new")) for c in ch), w, "a change is not digested")
        try:
            canonical = jcs_bytes(leaf) == raw
        except (ValueError, RecursionError):
            canonical = False
        if not canonical:
            warnings.append(f"warning: {w}: the line is not RFC 8785 canonical JSON")
        leaves[seq], last = (no, leaf, leaf_hash(raw)), seq

    proved = set()
    for no, _, p in jsonl(bundle, "proofs.jsonl"):
        w, seq = f"proofs.jsonl:{no}", p.get("seq")
        need(is_int(seq), w, "seq is not a non-negative integer")
        need(seq in leaves, w, f"proof for seq {seq}, which has no line in leaves.jsonl")
        need(seq not in proved, w, f"a second proof for seq {seq}")
        need(is_int(p.get("treeSize")) and p["treeSize"] == size, w,
             f"treeSize {p.get('treeSize')} is not the checkpoint's tree size {size}")
        need(isinstance(p.get("hashes"), list), w, "hashes is not a list")
        lh = unb64(p.get("leafHash"), 32, "leafHash", w)
        path = [unb64(h, 32, f"hashes[{i}]", w) for i, h in enumerate(p["hashes"])]
        lno, _, computed = leaves[seq]
        need(lh == computed, w, f"leafHash for seq {seq} is not the hash of leaves.jsonl line {lno}")
        need(inclusion_ok(seq, size, lh, path, root), w,
             f"inclusion proof for seq {seq} does not lead to the checkpoint root")
        proved.add(seq)
    for seq, (lno, _, _) in leaves.items():
        need(seq in proved, f"leaves.jsonl:{lno}", f"no inclusion proof for seq {seq} in proofs.jsonl")

    payloads, last = 0, -1
    for no, _, p in jsonl(bundle, "payloads.jsonl"):
        w, seq, changes = f"payloads.jsonl:{no}", p.get("seq"), p.get("changes")
        need(is_int(seq), w, "seq is not a non-negative integer")
        need(seq > last, w, f"seq {seq} is not in increasing order")
        need(seq in leaves, w, f"payload for seq {seq}, which has no line in leaves.jsonl")
        salt = unb64(p.get("salt"), 16, "salt", w)
        need("request" in p and "response" in p and isinstance(changes, list), w,
             "a payload needs request, response and changes")
        lno, leaf, _ = leaves[seq]
        need(len(changes) == len(leaf["changes"]), w,
             f"{len(changes)} changes, but leaves.jsonl line {lno} commits to {len(leaf['changes'])}")
        checks = [(part, p[part], leaf[part]["body"]) for part in ("request", "response")]
        for i, (c, lc) in enumerate(zip(changes, leaf["changes"])):
            need(isinstance(c, dict) and "old" in c and "new" in c, w, f"changes[{i}] needs old and new")
            checks += [(f"changes[{i}].{k}", c[k], lc[k]) for k in ("old", "new")]
        for what, value, d in checks:
            try:
                data = jcs_bytes(value)
            except (ValueError, RecursionError) as e:
                raise Fail(w, f"{what} cannot be canonicalized: {e}")
            need(b64(hashlib.sha256(salt + data).digest()) == d["sha256"] and len(data) == d["size"], w,
                 f"{what} of seq {seq} does not match its digest in leaves.jsonl line {lno}")
        payloads, last = payloads + 1, seq

    complete = len(leaves) == size
    if complete:  # the bundle holds the whole tree: recompute its root outright
        need(root_of([h for _, _, h in leaves.values()]) == root, "leaves.jsonl",
             "the root computed from all leaves is not the checkpoint root")
    return warnings, (f"ok: {len(leaves)} events, {payloads} payloads, tree size {size}, root {b64(root)}, "
                      f"origin {origin}" + (" (complete: root recomputed from all leaves)" if complete else ""))


def main():
    ap = argparse.ArgumentParser(description="Verify a scimtrail offline audit bundle.")
    ap.add_argument("bundle", type=Path, help="the bundle directory")
    ap.add_argument("--key", required=True, help="the log's verifier key file (NAME+KEYID+BASE64), from a trusted source")
    args = ap.parse_args()
    try:
        warnings, summary = verify(args.bundle, args.key)
    except Fail as e:
        print(e)
        return 1
    except Exception as e:  # whatever the damage, report it in one line, never as a traceback
        print(f"{args.bundle}: cannot be verified: {type(e).__name__}: {e}")
        return 1
    print("\n".join(warnings + [summary]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
