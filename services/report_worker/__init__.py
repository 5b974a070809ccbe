"""report-worker: report records, the Celery app and tasks that make report files,
their REST API and Flower. Importing the package loads the Celery app, so
`shared_task`s sent from the HTTP process go to the configured Redis broker."""

from report_worker.celery_app import app as celery_app

__all__ = ["celery_app"]
