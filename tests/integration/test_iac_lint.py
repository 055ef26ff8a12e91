"""Linters and scanners over the infrastructure templates and the Dockerfile.

- cfn-lint: no errors and no warnings in any template (informational findings are fine).
- checkov: no failed check in the templates (framework cloudformation) or the Dockerfile
  (framework dockerfile); every skip carries its reason next to the resource, and no skip is
  stale. Checkov evaluates Conditions with the parameters' defaults, so resources behind a
  condition that is off by default (the CDN, the second NAT gateway ...) would go unscanned:
  each template is therefore also scanned as an "all features on" variant.
- hadolint: the Dockerfile is clean.

Each tool runs once, over every file it checks. A tool that is not installed skips its tests
with the reason; `make test` installs them all.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support import venv_tool

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
DOCKERFILE = ROOT / "Dockerfile"
TEMPLATES = sorted(INFRA.glob("*.yaml"))
TIMEOUT = 600
MIN_REASON = 20

# Parameter values that switch on every conditional resource (for the checkov variants).
FEATURES_ON = {
    "EnableCdn": "true",
    "CdnDomainName": "cdn.example.com",
    "CdnCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000",
    "CdnWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/example/00000000-0000-0000-0000-000000000000",
    "ShareWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/share/00000000-0000-0000-0000-000000000000",
    "AlarmEmail": "ops@example.com",
    "NatGateways": "per-az",
    "HostedZoneId": "Z0000000000000000000",
    "DeployWebService": "true",
}


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)


def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    return cfn_yaml.load(str(path))


def test_there_are_templates_to_check():
    assert {p.stem for p in TEMPLATES} >= {"network", "data", "processor", "app", "pipeline"}


# ------------------------------------------------------------------------------- cfn-lint

def test_cfn_lint_finds_no_errors_or_warnings():
    result = run([venv_tool("cfn-lint"), "--format", "json", *map(str, TEMPLATES)])
    try:
        findings = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        pytest.fail(f"cfn-lint did not answer JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    serious = [f for f in findings if f["Level"] in ("Error", "Warning")]
    assert not serious, "\n".join(
        f"{f['Filename']}:{f['Location']['Start']['LineNumber']} {f['Rule']['Id']} {f['Message']}" for f in serious
    )
    assert result.returncode in (0, 8), result.stderr  # 8: informational findings only


def test_cfn_lint_ignores_carry_a_reason():
    pytest.importorskip("cfnlint", reason="cfn-lint is not installed (make test installs it)")
    for path in TEMPLATES:
        parsed = load_template(path)
        holders = [parsed.get("Metadata", {})] + [r.get("Metadata", {}) for r in parsed["Resources"].values()]
        for metadata in holders:
            config = metadata.get("cfn-lint", {})
            if config.get("config", {}).get("ignore_checks"):
                assert len(str(config.get("comment", ""))) >= MIN_REASON, f"{path.name}: cfn-lint ignore without a reason"


# ------------------------------------------------------------------------------- checkov

def features_on_variant(path: Path, directory: Path) -> Path | None:
    """The template with every condition-gating parameter defaulted on, as JSON (None when
    the template has no such parameter)."""
    parsed = load_template(path)
    switched = [name for name in parsed.get("Parameters", {}) if name in FEATURES_ON]
    if not switched:
        return None
    for name in switched:
        parsed["Parameters"][name]["Default"] = FEATURES_ON[name]
    variant = directory / f"{path.stem}.features-on.json"
    variant.write_text(json.dumps(parsed, indent=1))
    return variant


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """One checkov run over the templates, their variants and the Dockerfile, by framework."""
    checkov = venv_tool("checkov")
    pytest.importorskip("cfnlint", reason="cfn-lint is not installed (make test installs it)")
    variants_dir = tmp_path_factory.mktemp("checkov-variants")
    variants = [v for v in (features_on_variant(path, variants_dir) for path in TEMPLATES) if v]
    # Paths relative to the repository (run() works there): checkov puts each file's path into
    # the resources it resolves, and some versions' secret scan flags some absolute paths
    # (CKV_AWS_45 on a checkout under /tmp), which would make the verdict depend on the clone.
    relative = [str(path.relative_to(ROOT)) for path in (*TEMPLATES, DOCKERFILE)]
    result = run([
        checkov, "--framework", "cloudformation,dockerfile", "--skip-download", "--compact",
        "--output", "json", "--file", *relative, *map(str, variants),
    ])
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not answer JSON (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    reports = parsed if isinstance(parsed, list) else [parsed]
    return {report["check_type"]: report for report in reports}


def failures(report: dict[str, Any]) -> str:
    return "\n".join(
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in report["results"]["failed_checks"]
    )


@pytest.mark.parametrize("framework", ["cloudformation", "dockerfile"])
def test_checkov_finds_no_failed_checks(checkov_reports, framework):
    assert framework in checkov_reports, f"checkov scanned no {framework} file"
    report = checkov_reports[framework]
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert report["summary"]["passed"] > 0
    assert report["summary"]["failed"] == 0, failures(report)


def test_checkov_scanned_the_conditional_resources(checkov_reports):
    results = checkov_reports["cloudformation"]["results"]
    scanned = {c["resource"] for c in results["passed_checks"] + results["skipped_checks"]}
    assert "AWS::CloudFront::Distribution.CdnDistribution" in scanned


def declared_template_skips() -> set[tuple[str, str]]:
    declared = set()
    for path in TEMPLATES:
        for name, resource in load_template(path)["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) >= MIN_REASON, f"{path.name} {name} skips {skip['id']} without a reason"
                declared.add((f"{resource['Type']}.{name}", skip["id"]))
    return declared


def declared_dockerfile_skips() -> set[str]:
    declared = set()
    for line in DOCKERFILE.read_text().splitlines():
        match = re.search(r"checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?", line)
        if match:
            assert len((match.group(2) or "").strip()) >= MIN_REASON, f"Dockerfile skips {match.group(1)} without a reason"
            declared.add(match.group(1))
    return declared


def test_every_checkov_skip_has_a_reason_and_is_in_use(checkov_reports):
    skipped = checkov_reports["cloudformation"]["results"]["skipped_checks"]
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment") or "") >= MIN_REASON, check["check_id"]
    used = {(c["resource"], c["check_id"]) for c in skipped}
    assert declared_template_skips() == used
    docker_used = {c["check_id"] for c in checkov_reports["dockerfile"]["results"]["skipped_checks"]}
    assert declared_dockerfile_skips() == docker_used


# ------------------------------------------------------------------------------- hadolint

def test_hadolint_finds_nothing_in_the_dockerfile():
    result = run([venv_tool("hadolint"), "--format", "json", str(DOCKERFILE)])
    try:
        findings = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        pytest.fail(f"hadolint did not answer JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_hadolint_ignores_carry_a_reason():
    for number, line in enumerate(DOCKERFILE.read_text().splitlines(), 1):
        match = re.search(r"hadolint ignore=([A-Z0-9,]+)(.*)", line)
        if match:
            assert len(match.group(2).strip(" -:")) >= MIN_REASON, f"Dockerfile:{number} ignores {match.group(1)} without a reason"
