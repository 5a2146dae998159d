"""The bulk jobs' real adapters, wired: what the API function's job routes use, and the worker
function (app.py's `bulk_jobs`). chalicelib/bootstrap.py builds each once per container."""

from __future__ import annotations

from pathlib import Path

from chalicelib.config import LOCAL_STAGES, ConfigurationError
from chalicelib.domain.cursor import CursorCodec
from chalicelib.domain.exports import Exports, ExportWriter
from chalicelib.domain.identity import IdentityProvider
from chalicelib.domain.import_rows import ImportPlanner, RowImporter
from chalicelib.domain.imports import MAX_UPLOAD_BYTES, Imports
from chalicelib.domain.job_worker import JobWorker
from chalicelib.domain.pacing import Pacer
from chalicelib.domain.service import UserService
from chalicelib.job_settings import JobSettings, load_job_settings
from chalicelib.web.inputs import parse_new_user


def build_imports(cursors: CursorCodec) -> Imports:
    from chalicelib.adapters.job_store import DynamoJobStore
    from chalicelib.adapters.transfers import S3Transfers

    settings = load_job_settings()
    return Imports(DynamoJobStore(settings.jobs_table), S3Transfers(settings.bucket, MAX_UPLOAD_BYTES), cursors)


def build_exports() -> Exports:
    from chalicelib.adapters.job_queue import SqsJobQueue
    from chalicelib.adapters.job_store import DynamoJobStore
    from chalicelib.adapters.transfers import S3Transfers

    settings = load_job_settings()
    return Exports(
        DynamoJobStore(settings.jobs_table),
        S3Transfers(settings.bucket, MAX_UPLOAD_BYTES),
        SqsJobQueue(settings.queue_url),
    )


def _identities(settings: JobSettings) -> IdentityProvider:
    if not settings.user_pool_id:
        raise ConfigurationError("environment variable USER_POOL_ID is required for imports")
    if settings.stage in LOCAL_STAGES and settings.outbox_file:
        from chalicelib.adapters.local_outbox import OutboxCognitoIdentityProvider

        return OutboxCognitoIdentityProvider(settings.user_pool_id, Path(settings.outbox_file))
    from chalicelib.adapters.cognito import CognitoIdentityProvider

    return CognitoIdentityProvider(settings.user_pool_id)


def _no_cursors() -> bytes:
    raise ConfigurationError("the bulk jobs worker lists no users through cursors")


def build_worker() -> JobWorker:
    """The worker: the planner, the row importer (the API's own UserService) and the export writer."""
    from chalicelib.adapters.dynamodb import DynamoUserRepository
    from chalicelib.adapters.email_owners import ReservationOwners
    from chalicelib.adapters.job_queue import SqsJobQueue
    from chalicelib.adapters.job_store import DynamoJobStore
    from chalicelib.adapters.transfers import S3Transfers
    from chalicelib.adapters.user_pages import ListingPages

    settings = load_job_settings()
    if not settings.users_table:
        raise ConfigurationError("environment variable TABLE_NAME is required for bulk jobs")
    jobs = DynamoJobStore(settings.jobs_table)
    files = S3Transfers(settings.bucket, MAX_UPLOAD_BYTES)
    queue = SqsJobQueue(settings.queue_url)
    users = UserService(DynamoUserRepository(settings.users_table), CursorCodec(_no_cursors), _identities(settings))
    return JobWorker(
        ImportPlanner(jobs, files, queue),
        RowImporter(
            jobs, queue, users, ReservationOwners(settings.users_table), Pacer(settings.rows_per_second), parse_new_user
        ),
        ExportWriter(
            jobs, files, queue, ListingPages(settings.users_table), Pacer(settings.read_units_per_second, burst=50)
        ),
    )
