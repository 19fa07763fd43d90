"""schemathesis (its CLI, `st run`) against a running service's OpenAPI document, bounded by
examples per operation and a time budget, read back from its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Generated answers must not be server errors and must match what the document declares
# (body schema and content type). Undeclared 4xx statuses are reported by schemathesis too,
# but the issue asks for the two properties below.
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


@dataclass
class FuzzReport:
    cases: int = 0
    server_errors: int = 0
    failures: list[str] = field(default_factory=list)
    # Answers whose Content-Type the document does not declare (kept apart: a gap in the
    # document, not in the answer).
    content_types: list[str] = field(default_factory=list)
    # schemathesis's own crashes (e.g. hypothesis's "AST constructor recursion depth
    # mismatch" under several workers): about the tool, not the service.
    tool_errors: list[str] = field(default_factory=list)


def schemathesis_run(
    schema_url: str,
    base_url: str,
    headers: dict[str, str],
    out_dir: Path,
    selection: list[str],
    *,
    max_examples: int,
    max_time: int,
    seed: int = 12,
) -> FuzzReport:
    """Run schemathesis once; the number of generated cases and the failures it found."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / "report.json"
    st = Path(sys.executable).with_name("st")
    argv = [
        str(st), "run", schema_url, "--url", base_url,
        "--checks", CHECKS,
        "--max-examples", str(max_examples), "--max-time", str(max_time),
        "--seed", str(seed), "--workers", "2", "--request-timeout", "120",
        "--phases", "examples,coverage,fuzzing", "--no-shrink",
        "--suppress-health-check", "all", "--warnings", "off",
        "--report", "json", "--report-json-path", str(report_path),
        *selection,
    ]  # fmt: skip
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=max_time + 240, check=False, cwd=out_dir
    )
    (out_dir / "output.txt").write_text(done.stdout + done.stderr)
    if not report_path.exists():
        raise RuntimeError(f"schemathesis wrote no report:\n{(done.stdout + done.stderr)[-3000:]}")
    document = json.loads(report_path.read_text())
    report = FuzzReport(cases=int(document["test_cases"]["generated"]))
    for group in document.get("failures", []):
        where = ", ".join(group.get("operations", [])[:4])
        line = f"{group['title']} ×{group['count']} ({where})"
        if "Content-Type" in group["title"]:
            report.content_types.append(line)
            continue
        report.failures.append(line)
        if group.get("code") == "not_a_server_error" or "Server error" in group["title"]:
            report.server_errors += int(group["count"])
    for error in document.get("errors", []):
        line = f"error: {error['title']} ×{error['count']}"
        (report.tool_errors if error["title"] == "Runtime Error" else report.failures).append(line)
    if report.failures:
        # The run's directory goes with its stack: keep what explains the failure.
        text = done.stdout
        start = max(text.find("= ERRORS ="), text.find("= FAILURES ="))
        end = text.find("= SUMMARY =")
        if start >= 0:
            report.failures.append(text[start : end if end > start else start + 3000][:3000])
    return report
