"""Synthesizes the CDK app once per session, offline, in a child process.

A child process because Chalice's packager imports app.py and writes the stage's variables into
os.environ, which must not leak into this session's app. The source is staged with an empty
requirements.txt: the template does not depend on the vendored wheels, and staging keeps the
synth from downloading them (no network, no .chalice/deployments cache needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"
PREFIX = f"livedrop-{STAGE}-"
# Extra CDK context per stage: prod is deployed with someone to page, and checked by cdk-nag (a finding
# not accepted in infra/nag.py fails its synth).
ALARM_EMAIL = "oncall@example.com"
CONTEXT: dict[str, dict[str, str]] = {"prod": {"alarm_email": ALARM_EMAIL, "nag": "true"}}


@dataclass
class Synth:
    template: dict[str, Any]
    template_path: Path
    seconds: float

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}


def stage_source(target: Path) -> Path:
    """A copy of what Chalice packages: app.py, chalicelib/, .chalice/config.json, no requirements."""
    target.mkdir(parents=True)
    shutil.copy2(ROOT / "app.py", target / "app.py")
    shutil.copytree(ROOT / "chalicelib", target / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    (target / ".chalice").mkdir()
    shutil.copy2(ROOT / ".chalice" / "config.json", target / ".chalice" / "config.json")
    (target / "requirements.txt").write_text("")
    return target


def synthesize(work: Path, stages: tuple[str, ...] = ("dev", "prod")) -> dict[str, Synth]:
    """Synthesize each stage in its own child process, all at once; fail with their output if one fails."""
    source = stage_source(work / "source")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEDROP_", "AWS_", "CDK_", "POWERTOOLS_"))}
    base.update(
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        # CDK's built-in template validation triples the synth time; cfn-lint checks the template instead.
        CDK_VALIDATION="false",
    )
    started = time.monotonic()
    running = {}
    for stage in stages:
        (work / stage).mkdir()
        env = {
            **base,
            "CDK_OUTDIR": str(work / stage / "cdk.out"),
            "CDK_CONTEXT_JSON": json.dumps(
                {"stage": stage, "source_dir": str(source), "package_dir": str(work / stage), **CONTEXT.get(stage, {})}
            ),
        }
        running[stage] = subprocess.Popen(
            [sys.executable, str(ROOT / "infra" / "app.py")],
            env=env,
            cwd=work / stage,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    synths = {}
    for stage, process in running.items():
        output, _ = process.communicate(timeout=240)
        if process.returncode != 0:
            pytest.fail(f"cdk synth of {stage} failed ({process.returncode}):\n{output}", pytrace=False)
        path = work / stage / "cdk.out" / f"{stage}.template.json"
        synths[stage] = Synth(json.loads(path.read_text()), path, time.monotonic() - started)
    return synths


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    """Every stage of .chalice/config.json that infra deploys, synthesized once per session."""
    return synthesize(tmp_path_factory.mktemp("infra"))


@pytest.fixture(scope="session")
def synth(synths: dict[str, Synth]) -> Synth:
    """The dev stage: its CloudFormation template (a SAM template: Chalice's functions)."""
    return synths[STAGE]


@pytest.fixture(scope="session")
def prod(synths: dict[str, Synth]) -> Synth:
    """The prod stage (Stripe payments, retained data)."""
    return synths["prod"]


@pytest.fixture(scope="session")
def template(synth: Synth) -> Any:
    """The same template under aws_cdk.assertions."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk.assertions import Template

    return Template.from_json(synth.template)


@pytest.fixture(scope="session", autouse=True)
def _dev_stack(stack: Any) -> Any:
    """This tier runs against the session's dev stack, started before its first test."""
    return stack
