"""gr.socket: an echo server and many clients on 127.0.0.1, timeouts, close."""

import socket as stdsocket
import threading
import time

import pytest

import goroutine as gr
from goroutine import socket as gsocket


def _listener():
    srv = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
    srv.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    return srv


def test_is_a_socket_subclass():
    s = gsocket.socket()
    try:
        assert isinstance(s, stdsocket.socket)
        assert s.gettimeout() is None and s.getblocking()
        s.settimeout(1.5)
        assert s.gettimeout() == 1.5
        s.setblocking(False)
        assert s.gettimeout() == 0.0
    finally:
        s.close()
    assert gsocket.AF_INET == stdsocket.AF_INET and gsocket.gethostname is stdsocket.gethostname


def test_echo_server_and_100_clients():
    def handle(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    def server(srv, n):
        hs = []
        for _ in range(n):
            conn, _addr = srv.accept()
            hs.append(gr.go(handle, conn))
        for h in hs:
            h.join()

    def client(port, i):
        with gsocket.create_connection(("127.0.0.1", port)) as c:
            c.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
            for k in range(20):
                msg = b"%d:%d:" % (i, k) + b"x" * (k * 50)
                c.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = c.recv(65536)
                    assert chunk
                    got += chunk
                assert got == msg
        return i

    def main():
        srv = _listener()
        port = srv.getsockname()[1]
        s = gr.go(server, srv, 100)
        cs = [gr.go(client, port, i) for i in range(100)]
        res = [c.join() for c in cs]
        s.join()
        srv.close()
        return res

    assert gr.run(main) == list(range(100))


def test_recv_into_recvfrom_send_and_makefile():
    def main():
        a, b = gsocket.socketpair()
        with a, b:
            gr.go(lambda: (gr.sleep(0.01), b.send(b"hello")))
            buf = bytearray(10)
            n = a.recv_into(buf)
            assert buf[:n] == b"hello"
            b.sendall(memoryview(b"line one\nline two\n"))
            f = a.makefile("rb")
            assert f.readline() == b"line one\n"
            assert f.readline() == b"line two\n"
            f.close()
            u1 = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM)
            u2 = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM)
            with u1, u2:
                u1.bind(("127.0.0.1", 0))
                gr.go(lambda: (gr.sleep(0.01), u2.sendto(b"dgram", u1.getsockname())))
                data, addr = u1.recvfrom(100)
                assert data == b"dgram"

    gr.run(main)


def test_timeouts():
    def main():
        a, b = gsocket.socketpair()
        with a, b:
            a.settimeout(0.05)
            t = time.monotonic()
            with pytest.raises(TimeoutError):
                a.recv(10)
            assert time.monotonic() - t >= 0.04
            a.setblocking(False)
            with pytest.raises(BlockingIOError):
                a.recv(10)
        srv = _listener()
        with srv:
            srv.settimeout(0.05)
            with pytest.raises(TimeoutError):
                srv.accept()
        # connection refused is an error, not a hang
        port = _listener()
        p = port.getsockname()[1]
        port.close()
        with pytest.raises(ConnectionRefusedError):
            gsocket.create_connection(("127.0.0.1", p), timeout=1)

    gr.run(main)


def test_close_wakes_a_waiting_reader():
    def main():
        a, b = gsocket.socketpair()
        reader = gr.go(a.recv, 10)
        gr.sleep(0.01)
        a.close()
        with pytest.raises(OSError):
            reader.join(timeout=1)
        b.close()

    gr.run(main)


def test_sockets_from_a_plain_thread_block_only_it():
    srv = _listener()
    port = srv.getsockname()[1]

    def plain_client():
        with gsocket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"ping")
            assert c.recv(4) == b"pong"

    t = threading.Thread(target=plain_client)

    def main():
        t.start()
        conn, _ = srv.accept()
        with conn:
            assert conn.recv(4) == b"ping"
            conn.sendall(b"pong")

    gr.run(main)
    t.join()
    srv.close()


def test_socket_operations_errors_and_flags():
    """The operations the runtime implements (recv, recv_into, send, sendall) raise
    what the standard socket raises, honour flags and timeouts, and move data larger
    than any buffer."""

    def main():
        a, b = gsocket.socketpair()
        with a, b:
            b.sendall(b"peek")
            assert a.recv(4, stdsocket.MSG_PEEK) == b"peek"
            assert a.recv(100) == b"peek"
            with pytest.raises(ValueError):
                a.recv(-1)
            with pytest.raises(ValueError):
                a.recv_into(bytearray(2), 5)
            with pytest.raises(TypeError):
                a.sendall("text")
            # larger than the per-thread read buffer, and than the socket buffer:
            # sendall parks while the reader drains it
            big = bytes(range(256)) * 8192  # 2 MiB
            got = bytearray()

            def reader():
                while len(got) < len(big):
                    got.extend(b.recv(1 << 20))

            r = gr.go(reader)
            a.sendall(memoryview(big))
            r.join(timeout=10)
            assert got == big
            # the same with a timeout on the sending socket (each wait has one)
            a.settimeout(5)
            got.clear()
            r = gr.go(reader)
            a.sendall(big)
            r.join(timeout=10)
            assert got == big
            # a full buffer on a non-blocking socket: BlockingIOError, as sendall
            # and send say there
            a.setblocking(False)
            with pytest.raises(BlockingIOError):
                while True:
                    a.send(b"x" * 65536)
            with pytest.raises(BlockingIOError):
                a.sendall(b"y" * 65536)
        with pytest.raises(OSError) as ei:
            a.recv(1)  # closed
        assert ei.value.errno == 9  # EBADF
        c, d = gsocket.socketpair()
        d.close()
        with c:
            with pytest.raises(BrokenPipeError):
                for _ in range(10):
                    c.sendall(b"z" * 1024)

    gr.run(main)
