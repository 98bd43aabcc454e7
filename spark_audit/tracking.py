"""MLflow calls that fail fast, and fail as :class:`~spark_audit.errors.TrackingError` naming the server.

Teams run MLflow as a tracking server over HTTP. It can be down when an audit
starts, or die while the audit logs its run. Either way the audit stops in
seconds with exit code 3 and a message naming the server, and no result is
marked complete: the audit logs its MLflow run before it writes any result row
(:func:`spark_audit.audit.run_audit`).

- :func:`apply_defaults` caps MLflow's HTTP retries and timeout (MLflow's own
  defaults retry a refused connection for minutes), and keeps MLflow's
  "View run at" lines out of the command's output, unless the environment
  already sets these;
- :func:`check_reachable` is the probe made before any Spark work;
- :func:`tracking_calls` turns an MLflow or HTTP failure inside its block into a
  ``TrackingError`` saying what was being done;
- :func:`lost_server` tells "could not talk to the server" from an answer of the
  server (a missing run, say), which callers report differently;
- :func:`end_run_failed` marks a run FAILED, if the server still answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import requests
from mlflow.exceptions import MlflowException

from spark_audit.errors import AuditError, TrackingError

# MLflow's environment variables and the values spark-audit uses when they are not set: one retry of a failed
# request (MLflow's default is 7, with exponential backoff), 15 s per request (120), and no "View run at" line
# printed (and no extra request made for it) when a run ends: stdout is the audit's report
MLFLOW_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def apply_defaults() -> None:
    """Set :data:`MLFLOW_DEFAULTS` where the environment does not set them."""
    for name, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)


def tracking_uri(client) -> str:
    """The tracking URI a client talks to."""
    uri = getattr(client, "tracking_uri", None)
    if uri:
        return str(uri)
    return mlflow.get_tracking_uri()


def ui_url(client, configured: str | None = None) -> str:
    """Where people open MLflow: the spec's ``mlflow.ui_url`` (``configured``), else the tracking server's
    address (a SQLite store has no page: ``run_link`` then writes ``runs:/<id>``)."""
    return configured or tracking_uri(client)


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _lost(e: BaseException) -> bool:
    return isinstance(e, (ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout,
                          requests.exceptions.RetryError))


def lost_server(e: BaseException) -> bool:
    """Whether ``e`` (or an exception it was raised from) means the server could not be talked to:
    refused or lost connection, no answer in time, retries used up. MLflow wraps these in an
    ``MlflowException`` raised while handling the ``requests`` error, so the chain is searched."""
    return any(_lost(x) for x in _chain(e))


def reason(e: BaseException) -> str:
    """A short cause: "connection refused", "no answer within 15 s", or the first line of the error."""
    chain = list(_chain(e))
    if any(isinstance(x, ConnectionRefusedError) for x in chain):
        return "connection refused"
    if any(isinstance(x, (TimeoutError, requests.Timeout)) for x in chain):
        return f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '120')} s"
    if any(isinstance(x, (ConnectionError, requests.ConnectionError)) for x in chain):
        return "connection lost"
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:300]


def error(client_or_uri, doing: str, e: BaseException) -> TrackingError:
    """The ``TrackingError`` for ``e``, raised while ``doing`` something with the server."""
    uri = client_or_uri if isinstance(client_or_uri, str) else tracking_uri(client_or_uri)
    return TrackingError(f"MLflow tracking server {uri!r} failed while {doing}: {reason(e)}")


def _is_tracking_failure(e: BaseException) -> bool:
    return isinstance(e, MlflowException) or lost_server(e)


@contextmanager
def tracking_calls(client, doing: str) -> Iterator[None]:
    """Run MLflow calls; an MLflow or connection failure leaves as a ``TrackingError`` (exit code 3).

    ``doing`` completes "failed while ...": ``"logging the audit run"``. Errors spark-audit raises on
    purpose (``AuditError``) and programming errors pass through unchanged.
    """
    try:
        yield
    except AuditError:
        raise
    except Exception as e:
        if not _is_tracking_failure(e):
            raise
        raise error(client, doing, e) from e


def check_reachable(client) -> None:
    """One cheap call (search one experiment): a ``TrackingError`` now, before any Spark work, if the
    server cannot be used (down, wrong address, refused credentials)."""
    try:
        client.search_experiments(max_results=1)
    except Exception as e:  # noqa: BLE001 - any failure here means "cannot use the server"
        raise TrackingError(f"MLflow tracking server {tracking_uri(client)!r} is not reachable: {reason(e)}") from e


@contextmanager
def mlflow_run(client, experiment_id: str, tags: dict[str, str]) -> Iterator[str]:
    """One MLflow run's lifecycle, the same for the reference, the audit and the gate: created with
    ``tags``, yields its id, FINISHED when the block ends, FAILED (if the server still answers) when
    it raises, and the error goes on."""
    run = client.create_run(experiment_id, tags=tags)
    rid = run.info.run_id
    try:
        yield rid
    except BaseException as e:
        end_run_failed(client, rid, e)
        raise
    client.set_terminated(rid, "FINISHED")


def end_run_failed(client, run_id: str, cause: BaseException) -> None:
    """Mark a run FAILED after ``cause`` interrupted it; skipped if ``cause`` says the server is gone
    (another call would only wait for it), and never raises: ``cause`` is the error to report."""
    if lost_server(cause):
        return
    try:
        client.set_terminated(run_id, "FAILED")
    except Exception:  # noqa: BLE001 - best effort: the original error follows
        pass
