"""A burst sent by handler code between two runs of the core's loop reaches a
slow client. The handler's task runs outside `process()`; what the socket did
not take is queued inside the core, which then makes the fd asyncio watches
readable, so the rest leaves without waiting for another event."""

from __future__ import annotations

import asyncio

import websockets

from wirecore import App, WebSocketConnection

N, SIZE = 2000, 4096


async def test_a_burst_from_a_stream_handler_reaches_a_slow_client():
    app = App()
    sent: list[int] = []

    @app.websocket("/burst", max_backpressure=64 << 20, idle_timeout=600)
    async def burst(ws: WebSocketConnection) -> None:
        chunk = b"x" * SIZE
        for _ in range(N):
            await ws.send_bytes(chunk)
        sent.append(N)
        async for _ in ws:  # nothing more happens on this connection
            pass

    async with app.test_server() as server:
        async with websockets.connect(server.url("/burst"), max_size=None) as client:
            await asyncio.sleep(0.3)  # slow to start reading: the kernel buffers fill
            got = 0

            async def drain() -> None:
                nonlocal got
                while got < N:
                    message = await client.recv()
                    assert len(message) == SIZE
                    got += 1

            try:
                await asyncio.wait_for(drain(), 5)
            except TimeoutError:
                raise AssertionError(f"received {got} of {N} messages: output stalled") from None
            assert sent == [N]
