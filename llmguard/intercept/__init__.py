"""The HTTP seam: the SDKs' transports wrapped, responses metered as they are read."""
