"""Free loopback ports for the benchmark drivers (scripts/bench/run and
scripts/bench/cluster), which start servers side by side with whatever
else runs on the machine."""
import socket


def free_port():
    """A port the kernel has just found free (bound to port 0, then closed),
    for a server that needs its port on its command line or in a config
    file (nginx, h2o, etcd; turnstile takes --port 0 instead). Another
    program may take it before the server binds it: the caller retries."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
