"""The CPS sandbox: an emulator of the Akamai CPS v2 API (engine, CA, virtual clock, ASGI app)."""
