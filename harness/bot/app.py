"""The bot's composition root: settings, store, Celery app and send task, built once."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery, Task

from .settings import BotSettings
from .store import Store
from .tasks import register_send_task
from .worker_events import WorkerEvents


def celery_config(settings: BotSettings) -> dict[str, object]:
    """Celery settings as production sets them; pool, concurrency, queue and exchange type,
    channel-error retry and the Redis transport's connection options only when configured
    (Celery's and kombu's own defaults otherwise)."""
    transport: dict[str, object] = {"visibility_timeout": settings.celery_broker_visibility_timeout}
    if settings.celery_broker_global_keyprefix:
        transport["global_keyprefix"] = settings.celery_broker_global_keyprefix
    connection_options = {
        "socket_timeout": settings.celery_broker_socket_timeout,
        "socket_keepalive": settings.celery_broker_socket_keepalive,
        "health_check_interval": settings.celery_broker_health_check_interval,
        "retry_on_timeout": settings.celery_broker_retry_on_timeout,
    }
    transport.update({key: value for key, value in connection_options.items() if value is not None})
    config: dict[str, object] = {
        "broker_url": settings.celery_broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        "task_default_queue": settings.celery_task_queue,
        "task_acks_late": settings.celery_task_acks_late,
        "task_reject_on_worker_lost": settings.celery_task_reject_on_worker_lost,
        "worker_cancel_long_running_tasks_on_connection_loss": (
            settings.celery_worker_cancel_long_running_tasks_on_connection_loss
        ),
        "worker_prefetch_multiplier": settings.celery_worker_prefetch_multiplier,
        "worker_disable_rate_limits": settings.celery_worker_disable_rate_limits,
        "timezone": settings.celery_timezone,
        "enable_utc": settings.celery_enable_utc,
    }
    if settings.celery_worker_pool is not None:
        config["worker_pool"] = settings.celery_worker_pool
    if settings.celery_worker_concurrency is not None:
        config["worker_concurrency"] = settings.celery_worker_concurrency
    if settings.celery_task_default_queue_type is not None:
        config["task_default_queue_type"] = settings.celery_task_default_queue_type
    if settings.celery_task_default_exchange_type is not None:
        config["task_default_exchange_type"] = settings.celery_task_default_exchange_type
    if settings.celery_worker_eta_task_limit is not None:
        config["worker_eta_task_limit"] = settings.celery_worker_eta_task_limit
    if settings.celery_broker_channel_error_retry:
        config["broker_channel_error_retry"] = True
    return config


@dataclass
class Bot:
    """The parts the webhook and the worker share; one per process."""

    settings: BotSettings
    store: Store
    celery: Celery
    send_task: Task


def create_bot(settings: BotSettings) -> Bot:
    """Everything the webhook and the worker share, wired to one store and one Celery app."""
    store = Store(settings.store_url, settings.bot_key_prefix)
    celery = Celery("bot", set_as_current=False)
    celery.conf.update(celery_config(settings))
    send_task = register_send_task(celery, settings, store)
    WorkerEvents(celery, store)
    return Bot(settings, store, celery, send_task)
