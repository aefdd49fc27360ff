"""A real S3 API on loopback for tests: moto's ThreadedMotoServer (a maintained S3-compatible
server), reached through the usual AWS environment variables, as a user's machine would be."""

from __future__ import annotations

import contextlib

from docsynth.core.environ import environment

# A secret no output may ever show (tests grep for it).
SECRET = "docsynth-test-secret-Zq8v"


class S3:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.env = {"AWS_ACCESS_KEY_ID": "docsynth-test-key", "AWS_SECRET_ACCESS_KEY": SECRET,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint}

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(key=self.env["AWS_ACCESS_KEY_ID"], secret=SECRET, skip_instance_cache=True,
                                 client_kwargs={"endpoint_url": self.endpoint})

    @contextlib.contextmanager
    def environment(self):
        """The AWS variables set in this process for the block (fsspec reads them as boto does)."""
        with environment(self.env):
            yield

    @contextlib.contextmanager
    def refusing(self):
        """Every request answered 403 for the block (moto's IAM checks on, no user known)."""
        from moto import settings

        old = settings.INITIAL_NO_AUTH_ACTION_COUNT
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        try:
            yield
        finally:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = old

    def stop(self) -> None:
        self.server.stop()
