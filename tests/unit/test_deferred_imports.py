"""rfc3987_syntax (jsonschema's "iri" format) loads on first use, and "iri" checks still work."""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import sys
import opsbook, jsonschema, nbformat
print("lark" in sys.modules)
checker = jsonschema.Draft7Validator.FORMAT_CHECKER
validator = jsonschema.Draft7Validator({"format": "iri"}, format_checker=checker)
print([e.message for e in validator.iter_errors("http://a b/")], list(validator.iter_errors("http://example.com/ü")))
print("lark" in sys.modules)
"""


def test_iri_checks_load_the_grammar_only_when_made() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    before, results, after = out.stdout.strip().splitlines()
    assert before == "False" and after == "True"
    assert results == "[\"'http://a b/' is not a 'iri'\"] []"
