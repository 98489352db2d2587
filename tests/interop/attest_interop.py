#!/usr/bin/env python3
"""Attestation interoperability (SPEC §12), run by .ci/run:

    python tests/interop/attest_interop.py target/release/lith

An independent implementation checks lith's attestations, and lith checks theirs:

* securesystemslib and in-toto verify lith's signed DSSE envelopes with the public
  key alone (the key id lith writes is securesystemslib's own default key id);
* in-toto-attestation parses every statement strictly as an in-toto Statement v1;
* lith verifies an envelope that securesystemslib signed;
* a tampered payload, signature or subject is refused by both.

Exits non-zero on the first check that fails, naming it.
"""

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format
from in_toto.models.metadata import Envelope as InTotoEnvelope
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1
    print(f"ok: {what}")


def lith(*args, cwd=REPO):
    env = dict(os.environ, SOURCE_DATE_EPOCH="1790000000", CI="true")
    return subprocess.run([LITH, *args], cwd=cwd, env=env, capture_output=True, text=True)


def verifies_in_python(envelope_dict, key):
    """securesystemslib's DSSE verification, and in-toto's, both with threshold 1."""
    results = []
    for cls in (Envelope, InTotoEnvelope):
        env = cls.from_dict(copy.deepcopy(envelope_dict))
        try:
            accepted = env.verify([key], 1)
            results.append(key.keyid in accepted)
        except VerificationError:
            results.append(False)
    check(results[0] == results[1], "securesystemslib and in-toto agree on an envelope")
    return results[0]


def parse_statement(payload):
    """A strict parse (unknown fields refused) and in-toto-attestation's validation."""
    pb = json_format.Parse(payload, statement_pb2.Statement())
    stmt = Statement.copy_from_pb(pb)
    stmt.validate()
    return pb


def lith_verify(envelope_path, pub_path, bundle=None):
    args = ["attest", "verify", envelope_path, "--pubkey", pub_path, "--json"]
    if bundle:
        args += ["--bundle", bundle]
    r = lith(*args)
    out = json.loads(r.stdout) if r.stdout.strip().startswith("{") else None
    return r.returncode, out, r.stderr


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


def main():
    tmp = tempfile.mkdtemp(prefix="lith-interop-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{checks} interoperability checks passed")


def run(tmp):
    # A key pair made by the other implementation: PKCS#8 and SubjectPublicKeyInfo PEM.
    private = Ed25519PrivateKey.generate()
    key_pem = os.path.join(tmp, "key.pem")
    pub_pem = os.path.join(tmp, "key.pub.pem")
    with open(key_pem, "wb") as f:
        f.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with open(pub_pem, "wb") as f:
        f.write(private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    key = SSlibKey.from_crypto(private.public_key())

    # The demo workspace, attested by a build.
    att = os.path.join(tmp, "att")
    r = lith("build", "--quiet", "--out", os.path.join(tmp, "site"), "--attest", att, "--key", key_pem)
    check(r.returncode == 3, f"the demo build exits 3 with --attest ({r.returncode}: {r.stderr.strip()})")
    runs_dir = os.path.join(att, "runs")
    runs = sorted(os.listdir(runs_dir))
    check(len(runs) == 4, f"four runs of the demo have indexed artifacts to attest ({runs})")
    report = json.load(open(os.path.join(tmp, "site", "report.json")))
    by_id = {run["run_id"]: run for root in report["bundles"]["roots"] for run in root["runs"]}

    for name in runs + ["build"]:
        path = os.path.join(att, "build.dsse.json") if name == "build" else os.path.join(runs_dir, name, "envelope.dsse.json")
        envelope = json.load(open(path))
        check(envelope["payloadType"] == "application/vnd.in-toto+json", f"{name}: the payload type is in-toto's")
        check([s["keyid"] for s in envelope["signatures"]] == [key.keyid], f"{name}: lith's key id is securesystemslib's default key id")
        check(verifies_in_python(envelope, key), f"{name}: securesystemslib and in-toto verify lith's signature")
        payload = base64.b64decode(envelope["payload"])
        pb = parse_statement(payload)
        check(pb.predicate_type == "https://slsa.dev/verification_summary/v1", f"{name}: a SLSA verification summary")
        statement = json.loads(payload)
        pred = statement["predicate"]
        check(pred["verifier"]["id"].startswith("pkg:cargo/lith@"), f"{name}: the verifier names lith and its version")
        check(pred["timeVerified"] == "2026-09-21T14:13:20Z", f"{name}: timeVerified is SOURCE_DATE_EPOCH")
        manifest_sha = hashlib.sha256(open(os.path.join(REPO, "manifest.lith"), "rb").read()).hexdigest()
        check(pred["policy"]["digest"]["sha256"] == manifest_sha, f"{name}: the policy is the manifest, with its digest")
        if name == "build":
            for s in statement["subject"]:
                got = hashlib.sha256(open(os.path.join(att, s["name"]), "rb").read()).hexdigest()
                check(got == s["digest"]["sha256"], f"build: subject {s['name']} is that run's statement")
            continue
        run_report = by_id[name]
        expect = "PASSED" if run_report["verification"] == "verified" else "FAILED"
        check(pred["verificationResult"] == expect, f"{name}: verificationResult {expect} as the report says")
        check(pred["lith"]["verification"] == run_report["verification"], f"{name}: lith's own status is the report's")
        # Every subject is an artifact of the run's index, by its repository-relative name.
        index = json.load(open(os.path.join(REPO, run_report["dir"], "artifact_index.json")))
        # (An index may name its artifacts from the repository root, through the
        # run folder: the subject is named from the workspace either way.)
        def in_run(p, run_id=name):
            return p.split(f"{run_id}/", 1)[1] if f"/{run_id}/" in f"/{p}" else p
        want = sorted((f"{run_report['dir']}/{in_run(a['path'])}", a["sha256"]) for a in index["artifacts"])
        got = sorted((s["name"], s["digest"]["sha256"]) for s in statement["subject"])
        check(got == want, f"{name}: the subjects are the index's artifacts and digests")
        # SHA256SUMS is what sha256sum -c reads.
        sums = os.path.join(runs_dir, name, "SHA256SUMS")
        if shutil.which("sha256sum"):
            c = subprocess.run(["sha256sum", "--check", "--quiet", sums], cwd=os.path.join(REPO, run_report["dir"]), capture_output=True, text=True)
            check((c.returncode == 0) == (expect == "PASSED"), f"{name}: sha256sum -c of SHA256SUMS agrees ({c.returncode})")

    passed = next(n for n in runs if by_id[n]["verification"] == "verified")
    good_path = os.path.join(runs_dir, passed, "envelope.dsse.json")
    good = json.load(open(good_path))
    bundle = os.path.join(REPO, by_id[passed]["dir"])
    code, out, err = lith_verify(good_path, pub_pem, bundle)
    check(code == 0 and out["signature"] == "verified" and out["mismatches"] == [], f"lith verifies its own envelope and bundle ({code}: {err.strip()})")

    # A tampered payload: one subject's digest changed, the signature kept.
    statement = json.loads(base64.b64decode(good["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    bad = dict(good, payload=base64.b64encode(json.dumps(statement).encode()).decode())
    bad_path = os.path.join(tmp, "tampered-payload.json")
    write_json(bad_path, bad)
    check(not verifies_in_python(bad, key), "Python refuses a tampered payload")
    code, out, _ = lith_verify(bad_path, pub_pem)
    check(code == 2 and out["signature"] == "invalid", f"lith refuses a tampered payload ({code})")

    # A tampered signature: one bit flipped.
    sig = bytearray(base64.b64decode(good["signatures"][0]["sig"]))
    sig[0] ^= 1
    bad = copy.deepcopy(good)
    bad["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    write_json(bad_path, bad)
    check(not verifies_in_python(bad, key), "Python refuses a tampered signature")
    code, out, _ = lith_verify(bad_path, pub_pem)
    check(code == 2 and out["signature"] == "invalid", f"lith refuses a tampered signature ({code})")

    # Another key: neither accepts it.
    other = SSlibKey.from_crypto(Ed25519PrivateKey.generate().public_key())
    other_pub = os.path.join(tmp, "other.pub.pem")
    with open(other_pub, "wb") as f:
        f.write(Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    env = Envelope.from_dict(copy.deepcopy(good))
    try:
        env.verify([other], 1)
        check(False, "Python refuses another key")
    except VerificationError:
        check(True, "Python refuses another key")
    code, out, _ = lith_verify(good_path, other_pub)
    check(code == 2, f"lith refuses another key ({code})")

    # A tampered subject: one artifact of a copy of the bundle rewritten.
    copy_dir = os.path.join(tmp, "bundle-copy")
    shutil.copytree(bundle, copy_dir)
    statement = json.loads(base64.b64decode(good["payload"]))
    rel = statement["subject"][0]["name"][len(by_id[passed]["dir"]) + 1:]
    with open(os.path.join(copy_dir, rel), "ab") as f:
        f.write(b"tampered")
    py_mismatch = [s["name"] for s in statement["subject"]
                   if hashlib.sha256(open(os.path.join(copy_dir, s["name"][len(by_id[passed]["dir"]) + 1:]), "rb").read()).hexdigest() != s["digest"]["sha256"]]
    check(py_mismatch == [statement["subject"][0]["name"]], "Python's re-hash finds the tampered subject")
    code, out, _ = lith_verify(good_path, pub_pem, copy_dir)
    check(code == 2 and [m["name"] for m in out["mismatches"]] == py_mismatch, f"lith's re-hash finds the same subject ({code})")

    # An envelope securesystemslib signed, over a statement of its own making.
    theirs = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": s["name"], "digest": s["digest"]} for s in json.loads(base64.b64decode(good["payload"]))["subject"]],
        "predicateType": "https://slsa.dev/verification_summary/v1",
        "predicate": {"verifier": {"id": "https://example.org/python-verifier"}, "timeVerified": "2026-12-03T00:00:00Z",
                      "resourceUri": by_id[passed]["dir"], "policy": {"uri": "https://example.org/policy"},
                      "verificationResult": "PASSED", "verifiedLevels": ["SLSA_BUILD_LEVEL_1"],
                      "lith": {"dir": by_id[passed]["dir"]}},
    }
    parse_statement(json.dumps(theirs))
    env = Envelope(json.dumps(theirs).encode(), "application/vnd.in-toto+json", {})
    env.sign(CryptoSigner(private, key))
    theirs_path = os.path.join(tmp, "python-signed.json")
    write_json(theirs_path, env.to_dict())
    code, out, err = lith_verify(theirs_path, pub_pem, bundle)
    check(code == 0 and out["signature"] == "verified" and out["rehashed"] == len(theirs["subject"]), f"lith verifies an envelope securesystemslib signed ({code}: {err.strip()})")
    tampered = env.to_dict()
    tampered["payload"] = base64.b64encode(json.dumps(dict(theirs, predicateType="x")).encode()).decode()
    write_json(theirs_path, tampered)
    code, out, _ = lith_verify(theirs_path, pub_pem)
    check(code == 2, f"lith refuses that envelope once its payload is changed ({code})")

    # Unsigned: lith writes an envelope with no signature; neither calls it verified.
    r = lith("attest", by_id[passed]["dir"], "--out", os.path.join(tmp, "unsigned"), "--quiet")
    check(r.returncode == 0, f"lith attest without --key exits 0 on a verified run ({r.returncode}: {r.stderr.strip()})")
    unsigned = json.load(open(os.path.join(tmp, "unsigned", "envelope.dsse.json")))
    check(unsigned["signatures"] == [], "an unsigned envelope has no signature")
    try:
        Envelope.from_dict(copy.deepcopy(unsigned)).verify([key], 1)
        check(False, "Python refuses an unsigned envelope")
    except VerificationError:
        check(True, "Python refuses an unsigned envelope")
    code, out, _ = lith_verify(os.path.join(tmp, "unsigned", "envelope.dsse.json"), pub_pem)
    check(code == 2 and out["signature"] == "unsigned", f"lith refuses an unsigned envelope ({code})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: attest_interop.py PATH-TO-LITH")
    LITH = os.path.abspath(sys.argv[1])
    main()
