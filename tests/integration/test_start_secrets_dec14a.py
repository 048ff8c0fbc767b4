"""A real start with everything it can on the engine's socket (the volume, the network, the
containers, the provisioning): no secret on any host argv nor in any request to the engine; the
secrets go in on stdin streams only (the agent's secret env on an exec's, the routes' credentials
on the sidecar's)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import engine, engine_api
from tests._docker import skip_unless_docker
from tests.integration import _harness as h

HOST_SECRET = "hs-dec14a-5e1f0c33a7b9d2-host-var-secret"


@skip_unless_docker()
class StartSecretsOnStdinOnly(unittest.TestCase):
    def test_no_secret_on_an_argv_or_in_a_request(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-dec14a-")
        self.addCleanup(tmp.cleanup)
        layout = h.write_manifests(Path(tmp.name))
        plan = h.plan_for(layout)
        argvs: list[str] = []
        requests: list[str] = []
        streams: list[bytes] = []
        real_popen, real_request = subprocess.Popen, engine_api.EngineAPI._request
        real_stream, real_send = engine_api.EngineAPI._exec_stream, engine_api.EngineAPI.send_stdin

        class Recording(real_popen):  # type: ignore[misc,valid-type]
            def __init__(self, args, *a, **kw):  # noqa: ANN001
                argvs.append(" ".join(map(str, args)) if isinstance(args, (list, tuple)) else str(args))
                super().__init__(args, *a, **kw)

        def request(api, method, path, *, body=None, timeout):  # noqa: ANN001
            requests.append(f"{method} {path} {json.dumps(body)}")
            return real_request(api, method, path, body=body, timeout=timeout)

        def stream(api, exec_id, stdin, timeout):  # noqa: ANN001
            streams.append(stdin or b"")
            return real_stream(api, exec_id, stdin, timeout)

        def send(api, sock, data):  # noqa: ANN001
            streams.append(data)
            return real_send(api, sock, data)

        with mock.patch.object(subprocess, "Popen", Recording), \
                mock.patch.object(engine_api.EngineAPI, "_request", request), \
                mock.patch.object(engine_api.EngineAPI, "_exec_stream", stream), \
                mock.patch.object(engine_api.EngineAPI, "send_stdin", send):
            bottle, launcher = h.launch(self, plan, layout.state_dir, env={"HOST_SECRET": HOST_SECRET})
            self.assertTrue(bottle.exec("true").ok)
        made = [r for r in requests if r.startswith("POST /networks/create") or r.startswith("POST /volumes/create")]
        self.assertEqual(len(made), 2, "the volume and the network were not made on the socket")
        self.assertIn('"Internal": true', made[-1] if "networks" in made[-1] else made[0])
        for text in (*argvs, *requests):
            self.assertNotIn(HOST_SECRET, text)
            self.assertNotIn("test-credential-", text)
        handed = b"\n".join(streams)
        self.assertIn(HOST_SECRET.encode(), handed, "the secret env did not go in on a stdin stream")
        self.assertIn(b"test-credential-", handed, "the credentials did not go in on the sidecar's stdin")
        inspect = engine.run(["inspect", launcher.names.agent_container, launcher.names.sidecar_container],
                             timeout=30).stdout
        self.assertNotIn(HOST_SECRET, inspect)
        self.assertNotIn("test-credential-", inspect)
        # The agent is on no network; the sidecar on its own internal one.
        agent, sidecar = json.loads(inspect)
        self.assertEqual(agent["HostConfig"]["NetworkMode"], "none")
        self.assertEqual(list(agent["NetworkSettings"]["Networks"]), ["none"])
        self.assertEqual(list(sidecar["NetworkSettings"]["Networks"]), [launcher.names.network])
        network = json.loads(engine.run(["network", "inspect", launcher.names.network], timeout=30).stdout)[0]
        self.assertTrue(network["Internal"])
        self.assertEqual(network["Labels"]["bot-bottle.id"], launcher.names.id)


if __name__ == "__main__":
    unittest.main()
