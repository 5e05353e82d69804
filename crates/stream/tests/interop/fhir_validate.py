"""Validates FHIR R4 resources, one JSON resource per line on standard input, with an
independent validator: the PyPI package fhir.resources 6.1.0 (FHIR 4.0.1 models: every
element's name, type and cardinality, required elements, primitive formats), and, beyond
what its models check, every `reference` against R4's literal reference rule and every
Coding's system against a URI.

Prints one JSON line: how many resources of each type were valid; exits 1 with every
problem on standard error when any was not.
"""

import json
import re
import sys

import fhir.resources
from fhir.resources import construct_fhir_element

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__

# R4, Reference.reference: a relative reference `Type/id` (optionally versioned) or an
# absolute URL ending in one; ids are 1-64 of [A-Za-z0-9-.].
RELATIVE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$")
URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:\S+$")


def walk(value, path, problems):
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and not RELATIVE.match(ref):
            problems.append(f"{path}.reference {ref!r} is not an R4 literal reference")
        system = value.get("system")
        if isinstance(system, str) and not URI.match(system):
            problems.append(f"{path}.system {system!r} is not a URI")
        for key, item in value.items():
            walk(item, f"{path}.{key}", problems)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            walk(item, f"{path}[{i}]", problems)


def main():
    counts, problems = {}, []
    for n, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        resource = json.loads(line)
        kind = resource.get("resourceType", "?")
        try:
            construct_fhir_element(kind, resource)
        except Exception as e:  # the validator's own report
            problems.append(f"line {n} ({kind}): {e}")
            continue
        found = []
        walk(resource, kind, found)
        problems.extend(f"line {n}: {p}" for p in found)
        if not found:
            counts[kind] = counts.get(kind, 0) + 1
    print(json.dumps(counts, sort_keys=True))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
