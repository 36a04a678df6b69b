"""The system under test: a small replica of the production bot's fixtures flow.

Webhook in (`webhook`), fixtures reply cut into parts (`fixtures`, `flow`), an
outbox in Redis (`store`), one Celery task per part (`tasks`) that sends through
the Cloud API client (`cloud_api`), and worker events from Celery's signals
(`worker_events`). All settings come from the environment (`settings`).
"""
