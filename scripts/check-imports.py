#!/usr/bin/env python3
"""Fails when a target imports a module it does not declare as a dependency.

SwiftPM's `--explicit-target-dependency-import-check error` (which `make test` also passes) catches
a target importing another target of this package; it does not catch an undeclared *product* of a
dependency, which compiles as long as some other target of the build brought the module in — and
then fails for a package that uses only that product. This reads Package.swift (`swift package
dump-package`), the products of each direct dependency (their own manifests, in .build/checkouts,
so run it after `swift package resolve` or a build), and every `import` in every target's sources.

Usage: scripts/check-imports.py   (exit 1 and one line per undeclared import when there are any)
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Modules of the toolchain and the system, available to every target without a declaration.
TOOLCHAIN = {
    "Swift", "Foundation", "FoundationEssentials", "FoundationInternationalization", "FoundationNetworking",
    "Glibc", "Musl", "Darwin", "Synchronization", "Dispatch", "Testing", "XCTest", "_Concurrency",
    "Observation", "RegexBuilder", "CoreFoundation", "os", "Android", "WinSDK",
}
IMPORT = re.compile(
    r"^\s*(?:@[\w.]+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|private|fileprivate)\s+)?"
    r"import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_]\w*)",
    re.MULTILINE,
)


def dump(path):
    output = subprocess.run(
        ["swift", "package", "--package-path", path, "dump-package"],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(output)


def module_name(target):
    """A target's module name: its name with the characters a Swift identifier cannot hold as `_`."""
    return re.sub(r"[^A-Za-z0-9_]", "_", target)


def main():
    package = dump(ROOT)
    checkouts = os.path.join(ROOT, ".build", "checkouts")
    # (package identity, product) -> the modules the product vends.
    products = {}
    for dependency in package.get("dependencies", []):
        source = next(iter(dependency.values()))[0]
        identity = source.get("identity") or os.path.basename(source.get("location", {}).get("remote", [{}])[0].get("urlString", "")).removesuffix(".git")
        path = os.path.join(checkouts, identity)
        if not os.path.isdir(path):
            candidates = [name for name in os.listdir(checkouts) if name.lower() == identity.lower()] if os.path.isdir(checkouts) else []
            if not candidates:
                print(f"check-imports: no checkout of {identity} in .build/checkouts (run `swift package resolve`)", file=sys.stderr)
                return 2
            path = os.path.join(checkouts, candidates[0])
        for product in dump(path).get("products", []):
            products[(identity.lower(), product["name"])] = [module_name(t) for t in product["targets"]]

    undeclared = []
    for target in package["targets"]:
        allowed = {module_name(target["name"])}
        for dependency in target.get("dependencies", []):
            if "byName" in dependency:
                allowed.add(module_name(dependency["byName"][0]))
            elif "target" in dependency:
                allowed.add(module_name(dependency["target"][0]))
            elif "product" in dependency:
                name, identity = dependency["product"][0], dependency["product"][1]
                allowed.update(products.get((identity.lower(), name), [module_name(name)]))
        default = "Tests" if target["type"] == "test" else "Sources"
        directory = os.path.join(ROOT, target.get("path") or os.path.join(default, target["name"]))
        for folder, _, files in os.walk(directory):
            for file in sorted(files):
                if not file.endswith(".swift"):
                    continue
                path = os.path.join(folder, file)
                with open(path, encoding="utf-8") as source:
                    text = source.read()
                for module in sorted(set(IMPORT.findall(text))):
                    if module not in allowed and module not in TOOLCHAIN:
                        undeclared.append(f"{os.path.relpath(path, ROOT)}: target {target['name']} imports {module}, which it does not declare")
    for line in undeclared:
        print(line)
    if undeclared:
        print(f"check-imports: {len(undeclared)} undeclared import(s); add the product or target to the target's dependencies in Package.swift", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
