"""Helpers shared by the Python client tests. Each script is run by tests/python_client.rs as
`python SCRIPT KUBECONFIG [ARGS...]` against its own skiff server, and fails with a non-zero
exit status (an AssertionError or ApiException traceback) when a check fails."""

import signal
import sys

from kubernetes import client, config


def setup(timeout_seconds=90):
    """Parse argv, arm a watchdog, and return (api_client, remaining args)."""
    if len(sys.argv) < 2:
        sys.exit("usage: %s KUBECONFIG [ARGS...]" % sys.argv[0])

    def on_alarm(_signum, _frame):
        raise TimeoutError("test script exceeded %ss" % timeout_seconds)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout_seconds)
    api_client = config.new_client_from_config(config_file=sys.argv[1])
    return api_client, sys.argv[2:]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def step(msg):
    print("--", msg, flush=True)


def make_namespace(core, name):
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))


def configmap(name, data, labels=None):
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}), data=data
    )
