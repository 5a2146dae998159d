"""Settings of the bulk jobs (imports and exports), read from the environment apart from the API's
Settings: the worker function has no cursor secret or pool client, and the API function reads
these only on the job routes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.config import LOCAL_STAGES, ConfigurationError, environment
from chalicelib.domain.pacing import EXPORT_READ_UNITS_PER_SECOND, ROWS_PER_SECOND


def _rate(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number") from exc
    if value < 0 or (value == 0 and environ.get("STAGE", "local") not in LOCAL_STAGES):
        raise ConfigurationError(f"{name} must be positive (0, no pacing, only in the local stages)")
    return value


@dataclass(frozen=True)
class JobSettings:
    stage: str
    jobs_table: str
    queue_url: str
    bucket: str
    users_table: str
    user_pool_id: str
    # Local stages only: where invitations are written instead of mailed.
    outbox_file: str
    rows_per_second: float
    read_units_per_second: float


def load_job_settings(environ: Mapping[str, str] | None = None) -> JobSettings:
    """What every job adapter needs; each checks its own setting where it is used."""
    environ = environment(environ)
    stage = environ.get("STAGE", "local")
    return JobSettings(
        stage=stage,
        jobs_table=environ.get("JOBS_TABLE_NAME", "").strip(),
        queue_url=environ.get("JOBS_QUEUE_URL", "").strip(),
        bucket=environ.get("AVATAR_BUCKET", "").strip(),
        users_table=environ.get("TABLE_NAME", "").strip(),
        user_pool_id=environ.get("USER_POOL_ID", "").strip(),
        outbox_file=environ.get("OUTBOX_FILE", "").strip() if stage in LOCAL_STAGES else "",
        rows_per_second=_rate(environ, "IMPORT_ROWS_PER_SECOND", ROWS_PER_SECOND),
        read_units_per_second=_rate(environ, "EXPORT_READ_UNITS_PER_SECOND", EXPORT_READ_UNITS_PER_SECOND),
    )
