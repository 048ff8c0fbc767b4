"""The ALPN names an intercepted tunnel offers its upstream: only the HTTP ones of the client's.

mitmproxy offers the upstream the client's own ALPN names (``tlsconfig`` mirrors them when the
server connection has none set), and a ClientHello carries any bytes there: 255 per name, as
many names as fit. Mirrored, a secret written as a name reached the allowed upstream's
handshake, where no scan looks.
"""

from __future__ import annotations

import tempfile
from types import SimpleNamespace

from tests._requires import requires
from tests.unit.test_sidecar_addon import SECRETS, AddonCase, addon_context, addon_mod

SECRET = SECRETS["known_secrets"]["PROMPTED"].encode()

if addon_mod is not None:
    from mitmproxy import tls
    from mitmproxy.addons import tlsconfig
    from mitmproxy.proxy import context
    from mitmproxy.test import tflow


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class UpstreamAlpnOffersTest(AddonCase):
    def test_only_http_names_are_kept_in_the_clients_order(self) -> None:
        offers = addon_mod.upstream_alpn_offers
        self.assertEqual(offers([b"h2", SECRET, b"http/1.1"]), (b"h2", b"http/1.1"))
        self.assertEqual(offers([b"http/1.1", b"h2"]), (b"http/1.1", b"h2"))
        self.assertEqual(offers([b"http/1.0"]), (b"http/1.0",))

    def test_no_offer_stays_none_and_only_other_names_become_http1(self) -> None:
        offers = addon_mod.upstream_alpn_offers
        self.assertIsNone(offers([]))
        self.assertEqual(offers([SECRET]), (b"http/1.1",))
        self.assertEqual(offers([SECRET, b"H2", b"spdy/3"]), (b"http/1.1",))


@requires(addon_mod is not None, "mitmproxy (the dev extra)")
class InterceptedHandshakeTest(AddonCase):
    """Our hook, then mitmproxy's own ``tlsconfig`` as the proxy runs them: what the upstream is offered."""

    def upstream_offers(self, host: str, client_offers: list[bytes]) -> tuple[bytes, ...]:
        tls_config = tlsconfig.TlsConfig()
        with addon_context(self.addon, tls_config) as tctx:
            tctx.configure(self.addon, **self.options())
            tctx.configure(tls_config, confdir=tempfile.mkdtemp(dir=self.dir))
            client = tflow.tclient_conn()
            client.alpn_offers = client_offers
            server = tflow.tserver_conn()
            server.address, server.sni, server.alpn_offers = (host, 443), None, ()
            ctx = context.Context(client, tctx.options)
            ctx.server = server
            hello = SimpleNamespace(sni=host, extensions=[(0, b"")], alpn_protocols=client_offers)
            data = SimpleNamespace(context=ctx, client_hello=hello, ignore_connection=False)
            self.addon.tls_clienthello(data)
            self.assertFalse(data.ignore_connection)
            tls_config.tls_start_server(tls.TlsData(server, ctx))
        return tuple(server.alpn_offers)

    def test_a_secret_offered_as_an_alpn_name_does_not_reach_the_upstream(self) -> None:
        offered = self.upstream_offers("allowed.example", [SECRET, b"http/1.1"])
        self.assertEqual(offered, (b"http/1.1",))
        self.assertNotIn(SECRET, b"".join(offered))

    def test_a_hello_offering_only_other_names_is_not_mirrored(self) -> None:
        self.assertEqual(self.upstream_offers("allowed.example", [SECRET]), (b"http/1.1",))

    def test_http_names_go_on_as_offered(self) -> None:
        self.assertEqual(self.upstream_offers("allowed.example", [b"h2", b"http/1.1"]), (b"h2", b"http/1.1"))

    def test_a_hello_without_alpn_offers_none_upstream(self) -> None:
        self.assertEqual(self.upstream_offers("allowed.example", []), ())
