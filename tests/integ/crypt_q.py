#!/usr/bin/python3
"""crypt_q.py - flatten scripts/enodump's JSON for the t_crypt_*.sh tests.

Usage: crypt_q.py ENODUMP.json

Prints one line per TCP connection of the capture, "key=value" separated by
single spaces, so that shell tests can grep a connection by its client port
("src=10.201.0.2:PORT ") and compare fields:

  src dst eno_ok tep (hex, with B's v bit) sessid aead (hex) resumed
  init1 init2 (1 when the Init message was seen) resume_id (hex or -)
  resume_i (ss index or -) key_source errors (count: connection + both directions)
  a2b_bytes a2b_sha a2b_rekeys a2b_fin a2b_frames   (the active opener's direction)
  b2a_bytes b2a_sha b2a_rekeys b2a_fin b2a_frames
  pt (1 when ENO was not negotiated and the payload is plaintext)
  a_offer    (1 when the active opener's SYN offered resumption: a tcpcrypt
              TEP suboption with v=1 and at least 9 data bytes, §3.5)
  a2b_key_max b2a_key_max   (with enodump -v: the most plaintext bytes sent
                             under one key generation, §3.8; else -)
"""
import json
import sys


def v(x):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "1" if x else "0"
    return str(x)


def main():
    with open(sys.argv[1]) as f:
        conns = json.load(f)
    for c in conns:
        eno = c.get("eno") or {}
        t = c.get("tcpcrypt")
        out = [("src", c["src"]), ("dst", c["dst"]), ("eno_ok", v(eno.get("ok")))]
        offer = False
        for sub in ((eno.get("syn_parsed") or {}).get("suboptions") or []):
            if sub.get("type") == "tep" and sub.get("v") and len(sub.get("data") or "") >= 18:
                offer = True
        out.append(("a_offer", v(offer)))
        if t:
            res = t.get("resume") or {}
            errs = len(t.get("errors") or [])
            out += [("tep", "%02x" % t["tep"]), ("sessid", v(t.get("session_id"))),
                    ("aead", "%04x" % t["aead"] if t.get("aead") is not None else "-"),
                    ("resumed", v(t.get("resumed"))),
                    ("init1", v(t.get("init1") is not None)), ("init2", v(t.get("init2") is not None)),
                    ("resume_id", v(res.get("id"))), ("resume_i", v(res.get("i"))),
                    ("key_source", v(t.get("key_source")).replace(" ", "_"))]
            for k, short in (("a_to_b", "a2b"), ("b_to_a", "b2a")):
                d = t["directions"][k]
                errs += len(d.get("errors") or [])
                out += [(short + "_bytes", v(d.get("bytes"))), (short + "_sha", v(d.get("sha256"))),
                        (short + "_rekeys", v(d.get("rekeys"))), (short + "_fin", v(d.get("fin"))),
                        (short + "_frames", v(d.get("frames")))]
                per_gen = {}
                for fr in d.get("frame_list") or []:
                    per_gen[fr["gen"]] = per_gen.get(fr["gen"], 0) + fr.get("plen", 0)
                out.append((short + "_key_max", str(max(per_gen.values())) if per_gen else "-"))
            out.append(("errors", str(errs)))
            out.append(("pt", "0"))
        else:
            out.append(("pt", "1" if c.get("plaintext") else "0"))
        print(" ".join("%s=%s" % kv for kv in out) + " ")


if __name__ == "__main__":
    main()
