"""The egress proxy: policy data (``policy``), pure decisions (``core``), mitmproxy glue (``addon``)."""
