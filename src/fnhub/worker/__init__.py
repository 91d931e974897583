"""The worker: a supervisor process and child processes that run tasks from the queue."""
