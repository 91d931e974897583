"""Known-vulnerability audit of the locked dependency set, for `.ci/run`.

pip-audit looks each pinned release up in PyPI's per-release JSON API. A found vulnerability
fails CI. A release it cannot look up (where that API is out of reach, as on the project's own
build machines) cannot be judged either way: it is listed loudly, never counted as clean, and
does not fail the run, since nothing the project changes could make it pass there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements" / "ci.lock"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--require-hashes",
                "--disable-pip",
                "--progress-spinner",
                "off",
                "-f",
                "json",
                "-o",
                str(report),
                "-r",
                str(LOCK),
            ],
            check=False,
        )
        if not report.exists():
            print(f"audit: pip-audit failed to run (exit {proc.returncode})", file=sys.stderr)
            return 1
        deps = json.loads(report.read_text())["dependencies"]
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"audit: {dep['name']} {dep['version']}: {ids}", file=sys.stderr)
    audited = len(deps) - len(skipped)
    print(
        f"audit: {audited} of {len(deps)} locked packages looked up, "
        f"{len(vulnerable)} with known vulnerabilities"
    )
    if skipped:
        print(
            f"audit: NOT AUDITED ({len(skipped)} packages): the vulnerability source was out "
            f"of reach, e.g. {skipped[0]['skip_reason']}",
            file=sys.stderr,
        )
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
