"""Run scim2-tester (which has no command line of its own) against a SCIM server.

Usage: python run_scim2_tester.py BASE_URL TOKEN EXCLUSIONS_FILE

Prints one line per check and a summary; exits non-zero when any check that the exclusions
file does not name ends in ERROR or CRITICAL, or when a check it names passes (a stale
exclusion), or when no check ran.
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

FAILED = {Status.ERROR, Status.CRITICAL}


def exclusions(path):
    """Checks excluded as wrong per the RFC, one per line: `KEY | RFC section: why`, where
    KEY is a check title, or a title, the resource type in brackets and the attribute the
    check is about (`check_add_attribute [Device] inventoryNote`)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            title, _, why = line.partition("|")
            out[title.strip()] = why.strip()
    return out


def main():
    base, token, excluded_file = sys.argv[1:4]
    excluded = exclusions(excluded_file)
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    client.discover()
    results = check_server(client)
    failed, stale, counts = [], [], {}
    for r in results:
        counts[r.status.name] = counts.get(r.status.name, 0) + 1
        label = f"[{r.resource_type}] {r.title}" if r.resource_type else r.title
        print(f"{r.status.name:10} {label}" + (f" - {r.reason}" if r.status in FAILED else ""))
        attribute = r.data.get("urn") if isinstance(r.data, dict) else None
        keys = {r.title, f"{r.title} [{r.resource_type}] {attribute}"}
        hit = keys & excluded.keys()
        if r.status in FAILED and not hit:
            failed.append(label)
        if r.status not in FAILED and hit:
            stale.append(f"{label} ({', '.join(sorted(hit))})")
    ran = sum(n for s, n in counts.items() if s != "SKIPPED")
    print(f"scim2-tester: {len(results)} checks, {ran} ran: " + ", ".join(
        f"{n} {s.lower()}" for s, n in sorted(counts.items())))
    for label in stale:
        print(f"stale exclusion, the check passes now: {label}")
    if failed:
        print(f"scim2-tester: {len(failed)} failed")
    sys.exit(1 if failed or stale or ran == 0 else 0)


if __name__ == "__main__":
    main()
