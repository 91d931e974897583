"""Test hosts in network namespaces for `bench/cluster.py`: a test tool, not product code.

`net` builds the namespaces and the bridge (`linkemu`: netem's delay and loss in userspace, for
a kernel without it), `procs` starts and supervises processes in them, `services` the
infrastructure (Redis + Sentinels, PostgreSQL, brokers), `roles` the fnhub roles, `load` the
traffic and its marks, `faults` what is done to the cluster and what it cost.
"""
