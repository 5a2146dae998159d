"""Settings of each deployed stage: Chalice's own from .chalice/config.json, the rest from
infra/stages.json. Table name, CORS origin, log level and tags have one home: config.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib.config import cors_allow_origin

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"
INFRA_STAGES = PROJECT_DIR / "infra" / "stages.json"
APP_NAME = "users-api"
DEPLOYED_STAGES = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Stage:
    name: str
    api_stage: str
    table_name: str
    cors_origin: str
    require_api_key: bool
    lambda_environment: dict[str, str]
    lambda_log_retention_days: int
    tags: dict[str, str]
    user_pool_name: str
    api_cache: bool
    waf: bool
    provisioned_concurrency: int
    api_log_retention_days: int
    # CodeDeploy's deployment configuration for the API function (Canary10Percent5Minutes, AllAtOnce, ...).
    traffic_shifting: str
    # The verified SES identity (and From address) Cognito sends the pool's mail with; "" for Cognito's own.
    ses_identity_arn: str = ""
    email_from: str = ""

    @property
    def function_name(self) -> str:
        """What Chalice names the function (`chalice deploy`); the templates use the same."""
        return f"{APP_NAME}-{self.name}"

    @property
    def hook_function_name(self) -> str:
        """The pre-traffic hook's name: CodeDeploy's managed role for Lambda (AWSCodeDeployRoleForLambda)
        may invoke only functions whose name starts with CodeDeployHook_."""
        return f"CodeDeployHook_{self.function_name}"

    @property
    def consumer_function_name(self) -> str:
        """The stream consumer (app.py's user_changes), named in both templates and its role policy."""
        return f"{APP_NAME}-{self.name}-changes"

    @property
    def worker_function_name(self) -> str:
        """The bulk jobs worker (app.py's bulk_jobs), named in both templates and its role policy."""
        return f"{APP_NAME}-{self.name}-jobs"

    @property
    def jobs_table_name(self) -> str:
        return self.lambda_environment["JOBS_TABLE_NAME"]

    @property
    def jobs_queue_name(self) -> str:
        return self.lambda_environment["JOBS_QUEUE"]

    @property
    def jobs_dead_letter_queue_name(self) -> str:
        return f"{self.jobs_queue_name}-dlq"

    @property
    def changes_hook_function_name(self) -> str:
        """The consumer's pre-traffic hook (app.py's changes_pre_traffic_hook): CodeDeployHook_ too."""
        return f"CodeDeployHook_{self.consumer_function_name}"

    @property
    def audit_table_name(self) -> str:
        return self.lambda_environment["AUDIT_TABLE_NAME"]

    @property
    def event_bus_name(self) -> str:
        return self.lambda_environment["EVENT_BUS_NAME"]

    @property
    def dead_letter_queue_name(self) -> str:
        """Where the consumer's mapping sends what it gave up on (the batch's place in the stream)."""
        return f"{APP_NAME}-{self.name}-changes-dlq"

    @property
    def cursor_secret_name(self) -> str:
        return f"{APP_NAME}/{self.name}/cursor-secret"

    @property
    def api_name(self) -> str:
        return f"{APP_NAME}-{self.name}"

    def avatar_bucket_name(self, account: str) -> str:
        """Bucket names are global: the account id (a template expression or policy variable
        here) makes this one unique without a setting, and lets the role policy name it."""
        return f"{APP_NAME}-{self.name}-avatars-{account}"


@cache
def _read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def load_stage(name: str) -> Stage:
    if name not in DEPLOYED_STAGES:
        raise ValueError(f"unknown deployed stage {name!r}; expected one of {', '.join(DEPLOYED_STAGES)}")
    chalice = _read(CHALICE_CONFIG)
    own = chalice["stages"][name]
    environment = {**chalice.get("environment_variables", {}), **own.get("environment_variables", {})}
    infra = _read(INFRA_STAGES)[name]
    return Stage(
        name=name,
        api_stage=own.get("api_gateway_stage", chalice.get("api_gateway_stage", "api")),
        table_name=environment["TABLE_NAME"],
        # Validated as the app validates it: one https origin, never `*`.
        cors_origin=cors_allow_origin(environment),
        require_api_key=environment.get("REQUIRE_API_KEY", "false") == "true",
        lambda_environment=environment,
        lambda_log_retention_days=int(own.get("log_retention_in_days", chalice["log_retention_in_days"])),
        tags={**chalice.get("tags", {}), **own.get("tags", {})},
        user_pool_name=infra["user_pool_name"],
        api_cache=bool(infra["api_cache"]),
        waf=bool(infra["waf"]),
        provisioned_concurrency=int(infra["provisioned_concurrency"]),
        api_log_retention_days=int(infra["api_log_retention_days"]),
        traffic_shifting=str(infra["traffic_shifting"]),
        ses_identity_arn=str(infra.get("ses_identity_arn", "")),
        email_from=str(infra.get("email_from", "")),
    )


def load_limits() -> dict[str, Any]:
    """infra/limits.json: the stack's numbers, shared by CloudFormation and Terraform."""
    return _read(PROJECT_DIR / "infra" / "limits.json")


def aws_properties(section: dict[str, Any]) -> dict[str, Any]:
    """A section of limits.json that is a set of AWS properties as they are, without its notes
    (`_why`, `_comment`)."""
    return {key: value for key, value in section.items() if not key.startswith("_")}
