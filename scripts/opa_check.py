#!/usr/bin/env python3
"""Run the policy pack on real OPA (the Go engine), to prove it needs nothing regorus-specific.

1. Every `test_*` rule of every `*_test.rego` must be true on OPA, as on `vigil policy test`.
2. Given `--inputs` (from `vigil replay --inputs-out`) and `--decisions` (its stdout), OPA's
   `data.vigil.main.decisions` on each recorded input must name exactly the rules Vigil decided.

OPA comes from the PyPI wheel `opa-golib-python-bindings` (OPA's v1 `rego` package in a Go
c-shared library with a ctypes wrapper); `scripts/opa-check` fetches it and runs this.
Ends with the line `N passed, N failed`; exits 1 on any failure.
"""

import argparse
import json
import pathlib
import re
import sys


def load_engine(policies: pathlib.Path):
    from opa_bindings import OpaEngine

    engine = OpaEngine()
    for path in sorted(policies.rglob("*.rego")):
        engine.add_policy(str(path.relative_to(policies)), path.read_text())
    for path in sorted(policies.rglob("data.json")):
        prefix = ".".join(path.relative_to(policies).parent.parts)
        engine.add_data(json.loads(path.read_text()), path=prefix)
    return engine


def unit_tests(engine, policies: pathlib.Path):
    """Yield (name, failure or None) for every OPA-style unit test."""
    for path in sorted(policies.rglob("*_test.rego")):
        text = path.read_text()
        package = re.search(r"^package\s+([\w.]+)", text, re.M).group(1)
        seen = []
        for name in re.findall(r"^(test_\w+)", text, re.M):
            if name in seen:
                continue
            seen.append(name)
            try:
                value = engine.eval_document(f"{package}.{name}")
                yield f"data.{package}.{name}", None if value is True else f"evaluated to {value!r}"
            except Exception as error:  # undefined, or an evaluation error
                yield f"data.{package}.{name}", str(error)


def recorded_decisions(engine, inputs: pathlib.Path, decisions: pathlib.Path):
    """Yield (name, failure or None) per recorded input: OPA's rules vs the rules Vigil emitted."""
    emitted = {}
    for line in decisions.read_text().splitlines():
        d = json.loads(line)
        emitted.setdefault(d["event"]["uuid"], []).append(d["rule"])
    for line in inputs.read_text().splitlines():
        document = json.loads(line)
        uuid = document["event"]["uuid"]
        try:
            found = engine.eval_document("vigil.main.decisions", document)
        except Exception as error:
            yield f"input {uuid}", str(error)
            continue
        opa_rules = sorted(f["rule"] for f in found)
        vigil_rules = sorted(emitted.get(uuid, []))
        yield f"input {uuid}", None if opa_rules == vigil_rules else f"OPA {opa_rules}, Vigil {vigil_rules}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policies", type=pathlib.Path)
    parser.add_argument("--inputs", type=pathlib.Path, help="vigil replay --inputs-out file")
    parser.add_argument("--decisions", type=pathlib.Path, help="vigil replay decisions for the same run")
    args = parser.parse_args()
    engine = load_engine(args.policies)
    results = list(unit_tests(engine, args.policies))
    if args.inputs and args.decisions:
        recorded = list(recorded_decisions(engine, args.inputs, args.decisions))
        decided = sum(1 for name, failure in recorded if failure is None)
        print(f"recorded inputs: {decided} of {len(recorded)} give the same rules on OPA")
        results += recorded
    failed = [(name, failure) for name, failure in results if failure is not None]
    for name, failure in failed[:50]:
        print(f"FAIL {name}: {failure}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
